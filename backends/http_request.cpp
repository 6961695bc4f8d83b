#include "backends/http_request.hpp"

namespace backlog_lab::backends {
namespace {

// RFC 9110 tchar: the characters of a method or a header name.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
  case '!':
  case '#':
  case '$':
  case '%':
  case '&':
  case '\'':
  case '*':
  case '+':
  case '-':
  case '.':
  case '^':
  case '_':
  case '`':
  case '|':
  case '~':
    return true;
  default:
    return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Calls `f` on every trimmed, non-empty element of a comma-separated list.
template <typename F> void for_each_element(std::string_view list, F f) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    auto item = trim_ows(list.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// Field values may hold visible characters, spaces, tabs and obs-text; no other controls.
bool valid_value(std::string_view v) {
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

// The next line of `data` from `pos`, without its CRLF or LF; npos in `end` if not complete.
struct line {
  std::string_view text;
  size_t next = std::string_view::npos; ///< offset just past the line end
};

line next_line(std::string_view data, size_t pos) {
  size_t nl = data.find('\n', pos);
  if (nl == std::string_view::npos) return {};
  auto text = data.substr(pos, nl - pos);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return {text, nl + 1};
}

request_head status_only(head_status s) {
  request_head h;
  h.status = s;
  return h;
}

// Checks "METHOD SP TARGET SP HTTP/1.x"; sets the version and the HEAD flag.
bool parse_request_line(std::string_view l, request_head& h, bool& http11) {
  size_t sp1 = l.find(' ');
  if (sp1 == std::string_view::npos) return false;
  size_t sp2 = l.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  auto method = l.substr(0, sp1);
  auto target = l.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = l.substr(sp2 + 1);
  if (!is_token(method) || target.empty()) return false;
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  if (version == "HTTP/1.1")
    http11 = true;
  else if (version == "HTTP/1.0")
    http11 = false;
  else
    return false;
  h.head_method = method == "HEAD";
  return true;
}

bool parse_content_length(std::string_view v, uint64_t& out) {
  if (v.empty() || v.size() > 18) return false; // 18 digits cannot overflow uint64
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  out = n;
  return true;
}

} // namespace

request_head parse_request_head(std::string_view data) {
  // RFC 9112 2.2: ignore empty lines before the request line (left over after a body, say).
  size_t pos = 0;
  while (pos < data.size() && (data[pos] == '\r' || data[pos] == '\n')) {
    if (data[pos] == '\r' && pos + 1 < data.size() && data[pos + 1] != '\n')
      return status_only(head_status::bad);
    ++pos;
  }
  if (pos > max_request_head) return status_only(head_status::too_large);

  // Refuse garbage early: the method must be a token, even before its line is complete.
  size_t method_end = pos;
  while (method_end < data.size() && is_tchar(data[method_end]))
    ++method_end;
  if (method_end < data.size() && data[method_end] != ' ') return status_only(head_status::bad);

  request_head h;
  bool http11 = false;
  auto first = next_line(data, pos);
  if (first.next == std::string_view::npos)
    return status_only(data.size() > max_request_head ? head_status::too_large
                                                      : head_status::incomplete);
  if (!parse_request_line(first.text, h, http11)) return status_only(head_status::bad);

  bool has_length = false, chunked_or_other = false, close = false, keep = false;
  pos = first.next;
  for (;;) {
    auto l = next_line(data, pos);
    if (l.next == std::string_view::npos)
      return status_only(data.size() > max_request_head ? head_status::too_large
                                                        : head_status::incomplete);
    if (l.next > max_request_head) return status_only(head_status::too_large);
    pos = l.next;
    if (l.text.empty()) break;
    // obs-fold (a line starting with white space) is rejected, as RFC 9112 5.2 allows.
    size_t colon = l.text.find(':');
    if (colon == std::string_view::npos) return status_only(head_status::bad);
    auto name = l.text.substr(0, colon);
    auto value = trim_ows(l.text.substr(colon + 1));
    if (!is_token(name) || !valid_value(value)) return status_only(head_status::bad);
    if (iequals(name, "content-length")) {
      uint64_t n = 0;
      if (!parse_content_length(value, n)) return status_only(head_status::bad);
      if (has_length && n != h.content_length) return status_only(head_status::bad);
      has_length = true;
      h.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      chunked_or_other = true;
    } else if (iequals(name, "connection")) {
      for_each_element(value, [&](std::string_view t) {
        if (iequals(t, "close")) close = true;
        if (iequals(t, "keep-alive")) keep = true;
      });
    } else if (iequals(name, "expect")) {
      h.expect_continue = iequals(value, "100-continue");
    }
  }
  // Both framings at once is a smuggling pattern (RFC 9112 6.3): refuse it outright.
  if (chunked_or_other && has_length) return status_only(head_status::bad);
  if (chunked_or_other) return status_only(head_status::unsupported);
  h.status = head_status::complete;
  h.head_bytes = pos;
  h.keep_alive = !close && (http11 || keep);
  return h;
}

} // namespace backlog_lab::backends
