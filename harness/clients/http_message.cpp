#include "harness/clients/http_message.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "harness/core/error.hpp"

namespace backlog_lab::clients {
namespace {

constexpr std::string_view pad_header = "X-Pad: "; // + padding + "\r\n"
constexpr std::size_t pad_overhead = pad_header.size() + 2;
constexpr std::string_view get_end = "\r\n\r\n";
constexpr std::string_view post_start = "POST /";
constexpr std::string_view post_middle = " HTTP/1.1\r\nHost: backlog-lab\r\nConnection: close\r\n"
                                         "Content-Type: application/octet-stream\r\n"
                                         "Content-Length: ";
constexpr std::string_view post_end = "\r\n\r\n";
constexpr std::size_t post_fixed = post_start.size() + post_middle.size() + post_end.size();
static_assert(post_fixed + 1 + 10 <= request_source::scratch_bytes, "POST header fits scratch");

std::uint32_t digits(std::uint64_t v) {
  std::uint32_t d = 1;
  while (v >= 10) {
    v /= 10;
    ++d;
  }
  return d;
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

} // namespace

request_source::request_source(request_kind kind, std::uint32_t min_bytes, std::uint32_t max_bytes,
                               const std::string& where)
    : kind_(kind) {
  if (min_bytes > max_bytes)
    throw input_error(where, "request_bytes min <= max, got " + std::to_string(min_bytes) + " > " +
                                 std::to_string(max_bytes));
  if (max_bytes > max_request_bytes)
    throw input_error(where, "request_bytes at most " + std::to_string(max_request_bytes) +
                                 ", got " + std::to_string(max_bytes));
  if (kind == request_kind::none) {
    if (max_bytes != 0)
      throw input_error(where, "request_bytes 0 with request_kind \"none\", got " +
                                   std::to_string(max_bytes));
    return;
  }
  if (kind == request_kind::http && max_bytes > 0 && min_bytes < min_http_bytes)
    throw input_error(where, "request_bytes of an http request at least " +
                                 std::to_string(min_http_bytes) + " (or 0: send nothing), got " +
                                 std::to_string(min_bytes));
  if (kind == request_kind::raw) {
    filler_.assign(max_bytes, 'x');
    return;
  }
  std::uint32_t largest_get = std::min(max_bytes, max_get_bytes);
  if (largest_get >= min_http_bytes + pad_overhead) {
    get_template_.reserve(largest_get);
    get_template_.append(get_prefix).append(pad_header);
    get_template_.append(largest_get - min_http_bytes - pad_overhead, 'a');
  }
  for (std::size_t extra = 0; extra < short_gets_.size(); ++extra) {
    std::string& s = short_gets_[extra];
    s.append("GET /").append(extra, 'a').append(get_prefix.substr(5)).append("\r\n");
  }
  if (max_bytes > max_get_bytes) filler_.assign(max_bytes - post_fixed, 'x');
}

std::array<std::string_view, 2> request_source::pieces(std::uint32_t size, char* scratch) const {
  if (size == 0 || kind_ == request_kind::none) return {};
  if (kind_ == request_kind::raw) return {std::string_view(filler_).substr(0, size), {}};
  if (size <= max_get_bytes) {
    std::uint32_t extra = size - min_http_bytes;
    if (extra < short_gets_.size()) return {short_gets_[extra], {}};
    // The template ends in padding; cut it to length and close the header and the head.
    std::size_t head = size - get_end.size();
    return {std::string_view(get_template_).substr(0, head), get_end};
  }
  // POST: size = fixed + path padding + digits(L) + L. L + digits(L) skips one value at each
  // power of ten, so one byte of path padding always reaches the size.
  std::uint64_t target = size - post_fixed;
  for (std::uint32_t path_pad = 0; path_pad < 2; ++path_pad) {
    for (std::uint32_t d = 1; d <= 10; ++d) {
      if (target < path_pad + d) break;
      std::uint64_t body = target - path_pad - d;
      if (digits(body) != d) continue;
      char* p = scratch;
      std::memcpy(p, post_start.data(), post_start.size());
      p += post_start.size();
      std::memset(p, 'a', path_pad);
      p += path_pad;
      std::memcpy(p, post_middle.data(), post_middle.size());
      p += post_middle.size();
      p = std::to_chars(p, scratch + scratch_bytes, body).ptr;
      std::memcpy(p, post_end.data(), post_end.size());
      p += post_end.size();
      return {std::string_view(scratch, static_cast<std::size_t>(p - scratch)),
              std::string_view(filler_).substr(0, body)};
    }
  }
  return {}; // unreachable for sizes the constructor accepted
}

// --- response parser ---------------------------------------------------------------------------

http_response_parser::result http_response_parser::headers_done() noexcept {
  if (status_ >= 100 && status_ < 200 && status_ != 101) {
    // An interim response (100 Continue): the real one follows.
    *this = http_response_parser{};
    return result::need_more;
  }
  if (status_ == 204 || status_ == 304 || status_ == 101) {
    state_ = state::done;
  } else if (chunked_) {
    state_ = state::chunk_size;
    remaining_ = 0;
  } else if (has_length_) {
    if (length_overflow_) {
      state_ = state::bad;
      return result::malformed;
    }
    state_ = remaining_ == 0 ? state::done : state::body_length;
  } else {
    state_ = state::until_eof;
  }
  return state_ == state::done ? result::complete : result::need_more;
}

http_response_parser::result http_response_parser::feed(const char* data, std::size_t n) noexcept {
  static constexpr std::string_view http = "HTTP/";
  static constexpr std::string_view content_length = "content-length";
  static constexpr std::string_view transfer_encoding = "transfer-encoding";
  static constexpr std::string_view chunked = "chunked";
  const char* p = data;
  const char* end = data + n;
  while (p < end) {
    switch (state_) {
    case state::version: {
      char c = *p++;
      if (pos_ < http.size()) {
        if (c != http[pos_]) {
          state_ = state::bad;
          return result::malformed;
        }
        ++pos_;
      } else if (c == ' ') {
        state_ = state::code;
        pos_ = 0;
      } else if (!((c >= '0' && c <= '9') || c == '.') || pos_ > 16) {
        state_ = state::bad;
        return result::malformed;
      } else {
        ++pos_;
      }
      break;
    }
    case state::code: {
      char c = *p++;
      if (pos_ < 3) {
        if (c < '0' || c > '9') {
          state_ = state::bad;
          return result::malformed;
        }
        status_ = static_cast<std::uint16_t>(status_ * 10 + (c - '0'));
        ++pos_;
      } else {
        state_ = c == '\n' ? state::line_start : state::reason;
      }
      break;
    }
    case state::reason:
      if (*p++ == '\n') state_ = state::line_start;
      break;
    case state::line_start: {
      char c = *p++;
      if (c == '\r') {
        state_ = state::header_lf;
      } else if (c == '\n') {
        if (headers_done() == result::complete) return result::complete;
      } else {
        state_ = state::header_name;
        pos_ = 1;
        char l = lower(c);
        maybe_length_ = l == content_length[0];
        maybe_te_ = l == transfer_encoding[0];
      }
      break;
    }
    case state::header_lf:
      if (*p++ != '\n') {
        state_ = state::bad;
        return result::malformed;
      }
      if (headers_done() == result::complete) return result::complete;
      break;
    case state::header_name: {
      char c = *p++;
      if (c == ':') {
        value_of_ = 0;
        if (maybe_length_ && pos_ == content_length.size()) {
          value_of_ = 1;
          has_length_ = true;
          remaining_ = 0;
        } else if (maybe_te_ && pos_ == transfer_encoding.size()) {
          value_of_ = 2;
        }
        state_ = state::header_value;
        pos_ = 0;
      } else if (c == '\n') {
        state_ = state::line_start; // a line without a colon: tolerated, ignored
      } else {
        char l = lower(c);
        maybe_length_ = maybe_length_ && pos_ < content_length.size() && l == content_length[pos_];
        maybe_te_ = maybe_te_ && pos_ < transfer_encoding.size() && l == transfer_encoding[pos_];
        if (pos_ < 255) ++pos_;
      }
      break;
    }
    case state::header_value: {
      char c = *p++;
      if (c == '\n') {
        state_ = state::line_start;
      } else if (value_of_ == 1) {
        if (c >= '0' && c <= '9') {
          if (remaining_ > (UINT64_MAX - 9) / 10) length_overflow_ = true;
          remaining_ = remaining_ * 10 + static_cast<std::uint64_t>(c - '0');
        }
      } else if (value_of_ == 2) {
        // A substring search for "chunked" (no repeated prefix, so restarting is exact).
        char l = lower(c);
        if (l == chunked[pos_]) {
          if (++pos_ == chunked.size()) {
            chunked_ = true;
            pos_ = 0;
          }
        } else {
          pos_ = l == chunked[0] ? 1 : 0;
        }
      }
      break;
    }
    case state::body_length: {
      std::uint64_t take = std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(end - p));
      p += take;
      remaining_ -= take;
      if (remaining_ == 0) {
        state_ = state::done;
        return result::complete;
      }
      break;
    }
    case state::chunk_size: {
      char c = *p++;
      int v = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (v >= 0) {
        if (remaining_ > (UINT64_MAX >> 4)) {
          state_ = state::bad;
          return result::malformed;
        }
        remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(v);
      } else if (c == '\n') {
        state_ = remaining_ == 0 ? state::trailer_start : state::chunk_data;
      } else {
        state_ = state::chunk_ext; // ";ext", whitespace or the CR
      }
      break;
    }
    case state::chunk_ext:
      if (*p++ == '\n') state_ = remaining_ == 0 ? state::trailer_start : state::chunk_data;
      break;
    case state::chunk_data: {
      std::uint64_t take = std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(end - p));
      p += take;
      remaining_ -= take;
      if (remaining_ == 0) state_ = state::chunk_data_end;
      break;
    }
    case state::chunk_data_end:
      if (*p++ == '\n') state_ = state::chunk_size;
      break;
    case state::trailer_start: {
      char c = *p++;
      if (c == '\r') {
        state_ = state::trailer_lf;
      } else if (c == '\n') {
        state_ = state::done;
        return result::complete;
      } else {
        state_ = state::trailer_skip;
      }
      break;
    }
    case state::trailer_skip:
      if (*p++ == '\n') state_ = state::trailer_start;
      break;
    case state::trailer_lf:
      if (*p++ != '\n') {
        state_ = state::bad;
        return result::malformed;
      }
      state_ = state::done;
      return result::complete;
    case state::until_eof:
      p = end;
      break;
    case state::done:
      return result::complete;
    case state::bad:
      return result::malformed;
    }
  }
  if (state_ == state::done) return result::complete;
  if (state_ == state::bad) return result::malformed;
  return result::need_more;
}

bool http_response_parser::on_eof() noexcept {
  if (state_ == state::until_eof) state_ = state::done;
  return state_ == state::done;
}

} // namespace backlog_lab::clients
