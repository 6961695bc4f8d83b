#include "harness/observer/counters.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "harness/core/error.hpp"

namespace backlog_lab::observer {
namespace {

constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r';
}

// Splits off the next whitespace-separated token of `rest`; empty when none is left.
std::string_view next_token(std::string_view& rest) noexcept {
  std::size_t i = 0;
  while (i < rest.size() && is_space(rest[i]))
    ++i;
  std::size_t j = i;
  while (j < rest.size() && !is_space(rest[j]))
    ++j;
  std::string_view tok = rest.substr(i, j - i);
  rest.remove_prefix(j);
  return tok;
}

// One line split into "Prefix" and the text after "Prefix:".
struct split_line {
  std::string_view prefix;
  std::string_view rest;
};

bool split_prefix(std::string_view line, split_line& out) noexcept {
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  for (char c : line.substr(0, colon))
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  out.prefix = line.substr(0, colon);
  out.rest = line.substr(colon + 1);
  return true;
}

std::string quoted(std::string_view s) {
  constexpr std::size_t max = 40;
  std::string q = "'";
  q += s.substr(0, max);
  if (s.size() > max) q += "...";
  q += "'";
  return q;
}

} // namespace

std::string counter_parse_error::describe() const {
  return "line " + std::to_string(line) + ": " + message;
}

std::optional<counter_parse_error> parse_counter_text(std::string_view text, counter_map& out,
                                                      std::size_t* fields_parsed) {
  std::size_t line_no = 0;
  std::size_t pairs = 0;
  std::string key; // reused: lookups by an existing buffer do not allocate
  auto next_line = [&text, &line_no](std::string_view& line) {
    // Skips blank lines; returns false at the end.
    while (!text.empty()) {
      std::size_t nl = text.find('\n');
      line = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      ++line_no;
      bool blank = true;
      for (char c : line)
        blank = blank && is_space(c);
      if (!blank) return true;
    }
    return false;
  };

  std::string_view header, values;
  while (next_line(header)) {
    const std::size_t header_line = line_no;
    split_line h, v;
    if (!split_prefix(header, h))
      return counter_parse_error{header_line,
                                 "expected 'Prefix: Name Name ...', got " + quoted(header)};
    if (!next_line(values))
      return counter_parse_error{header_line, "header line '" + std::string(h.prefix) +
                                                  ":' has no value line after it"};
    if (!split_prefix(values, v) || v.prefix != h.prefix)
      return counter_parse_error{line_no, "expected the values of '" + std::string(h.prefix) +
                                              ":' (line " + std::to_string(header_line) +
                                              "), got " + quoted(values)};
    std::size_t n = 0;
    for (;;) {
      std::string_view name = next_token(h.rest);
      std::string_view value = next_token(v.rest);
      if (name.empty() && value.empty()) break;
      if (value.empty())
        return counter_parse_error{line_no, "'" + std::string(h.prefix) + ":' has " +
                                                std::to_string(n) + " values for more names (" +
                                                "first without a value: " + quoted(name) + ")"};
      if (name.empty())
        return counter_parse_error{line_no, "'" + std::string(h.prefix) +
                                                ":' has more values than names (" +
                                                std::to_string(n) + " names)"};
      std::int64_t number = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
      if (ec == std::errc::result_out_of_range)
        return counter_parse_error{line_no, "value of " + std::string(h.prefix) +
                                                std::string(name) +
                                                " out of range: " + quoted(value)};
      if (ec != std::errc() || end != value.data() + value.size())
        return counter_parse_error{line_no, "value of " + std::string(h.prefix) +
                                                std::string(name) +
                                                " is not an integer: " + quoted(value)};
      key.assign(h.prefix);
      key.append(name);
      auto it = out.find(key);
      if (it != out.end())
        it->second = number;
      else
        out.emplace(key, number);
      ++n;
    }
    if (fields_parsed) *fields_parsed += n;
    ++pairs;
  }
  if (pairs == 0) return counter_parse_error{line_no, "no counter lines (empty text)"};
  return std::nullopt;
}

std::optional<std::int64_t> counter_snapshot::get(std::string_view name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

std::int64_t counter_snapshot::value_or_zero(std::string_view name) const {
  return get(name).value_or(0);
}

counter_map delta(const counter_map& before, const counter_map& after) {
  counter_map out;
  auto b = before.begin();
  for (const auto& [name, value] : after) {
    while (b != before.end() && b->first < name)
      ++b;
    std::int64_t base = (b != before.end() && b->first == name) ? b->second : 0;
    out.emplace_hint(out.end(), name, value - base);
  }
  return out;
}

counter_map delta(const counter_snapshot& before, const counter_snapshot& after) {
  return delta(before.values, after.values);
}

counter_reader::counter_reader(const lab::netns* ns) {
  auto open_both = [this] {
    netstat_fd_.reset(::open("/proc/thread-self/net/netstat", O_RDONLY | O_CLOEXEC));
    if (!netstat_fd_) throw lab_error(errno_message("open /proc/net/netstat", errno));
    snmp_fd_.reset(::open("/proc/thread-self/net/snmp", O_RDONLY | O_CLOEXEC));
    if (!snmp_fd_) throw lab_error(errno_message("open /proc/net/snmp", errno));
  };
  if (ns) {
    lab::netns_scope in(*ns);
    open_both();
  } else {
    open_both();
  }
  netstat_text_.reserve(16384);
  snmp_text_.reserve(16384);
}

void counter_reader::read_file(int fd, std::string& text, const char* name) {
  text.resize(text.capacity() < 16384 ? 16384 : text.capacity());
  std::size_t used = 0;
  for (;;) {
    if (used == text.size()) text.resize(text.size() * 2);
    // pread from 0 makes the seq_file start over: a fresh view of the same namespace.
    ssize_t n = ::pread(fd, text.data() + used, text.size() - used, static_cast<off_t>(used));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw lab_error(errno_message(std::string("read ") + name, errno));
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  text.resize(used);
}

void counter_reader::read(counter_snapshot& out) {
  read_file(netstat_fd_.get(), netstat_text_, "/proc/net/netstat");
  read_file(snmp_fd_.get(), snmp_text_, "/proc/net/snmp");
  out.taken = std::chrono::steady_clock::now();
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::size_t fields = 0;
    if (auto e = parse_counter_text(netstat_text_, out.values, &fields))
      throw lab_error("/proc/net/netstat: " + e->describe());
    if (auto e = parse_counter_text(snmp_text_, out.values, &fields))
      throw lab_error("/proc/net/snmp: " + e->describe());
    // A reused map may hold a counter the kernel no longer prints: start over once.
    if (out.values.size() == fields) return;
    out.values.clear();
  }
}

counter_snapshot counter_reader::read() {
  counter_snapshot s;
  read(s);
  return s;
}

} // namespace backlog_lab::observer
