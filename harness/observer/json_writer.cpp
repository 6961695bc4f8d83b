#include "harness/observer/json_writer.hpp"

#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <charconv>
#include <stdexcept>
#include <system_error>

#include "harness/core/error.hpp"

namespace backlog_lab::observer {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i] (a byte >= 0x80), 0 if there is none:
// the Unicode standard's table 3-7, which is what the DFA of nlohmann's dump() accepts.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  auto at = [&](std::size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
  };
  auto cont = [](unsigned c, unsigned lo = 0x80, unsigned hi = 0xBF) { return c >= lo && c <= hi; };
  unsigned c = at(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(at(1)) ? 2 : 0;
  if (c == 0xE0) return cont(at(1), 0xA0) && cont(at(2)) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(at(1)) && cont(at(2)) ? 3 : 0;
  if (c == 0xED) return cont(at(1), 0x80, 0x9F) && cont(at(2)) ? 3 : 0;
  if (c == 0xF0) return cont(at(1), 0x90) && cont(at(2)) && cont(at(3)) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(at(1)) && cont(at(2)) && cont(at(3)) ? 4 : 0;
  if (c == 0xF4) return cont(at(1), 0x80, 0x8F) && cont(at(2)) && cont(at(3)) ? 4 : 0;
  return 0;
}

} // namespace

json_writer::json_writer(int fd) : target_(target::fd), fd_(fd), buf_(&own_) {
  own_.reserve(chunk_bytes + 4096);
}

json_writer::json_writer(std::ostream& out) : target_(target::stream), stream_(&out), buf_(&own_) {
  own_.reserve(chunk_bytes + 4096);
}

json_writer::json_writer(std::string& out) : target_(target::string), buf_(&out) {}

json_writer::~json_writer() = default;

bool json_writer::valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void json_writer::indent(std::size_t depth) {
  buf_->append(2 * depth, ' ');
}

void json_writer::next_element() {
  // dump(2): each element on its own line, indented two spaces per level; "," ends all but the
  // last; an empty container stays "{}" or "[]".
  const std::size_t depth = empty_.size() - 1;
  if (empty_.back()) {
    buf_->push_back('\n');
    empty_.back() = false;
  } else {
    buf_->append(",\n", 2);
  }
  indent(depth);
}

void json_writer::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (empty_.size() > 1) {
    maybe_flush();
    next_element();
  }
}

void json_writer::begin_object() {
  before_value();
  buf_->push_back('{');
  empty_.push_back(true);
#ifndef NDEBUG
  last_key_.emplace_back();
#endif
}

void json_writer::end_object() {
  assert(empty_.size() > 1 && !after_key_);
  const bool was_empty = empty_.back();
  empty_.pop_back();
#ifndef NDEBUG
  last_key_.pop_back();
#endif
  if (!was_empty) {
    buf_->push_back('\n');
    indent(empty_.size() - 1);
  }
  buf_->push_back('}');
}

void json_writer::begin_array() {
  before_value();
  buf_->push_back('[');
  empty_.push_back(true);
#ifndef NDEBUG
  last_key_.emplace_back();
#endif
}

void json_writer::end_array() {
  end_object();
  buf_->back() = ']';
}

void json_writer::key(std::string_view k) {
  assert(empty_.size() > 1 && !after_key_);
#ifndef NDEBUG
  assert((empty_.back() || last_key_.back() < k) && "keys in increasing order, as dump() sorts");
  last_key_.back() = k;
#endif
  maybe_flush();
  next_element();
  write_string(k);
  buf_->append(": ", 2);
  after_key_ = true;
}

void json_writer::value(std::string_view s) {
  before_value();
  write_string(s);
}

void json_writer::value(bool b) {
  before_value();
  if (b)
    buf_->append("true", 4);
  else
    buf_->append("false", 5);
}

void json_writer::null() {
  before_value();
  buf_->append("null", 4);
}

void json_writer::signed_value(std::int64_t v) {
  before_value();
  char digits[24];
  auto r = std::to_chars(digits, digits + sizeof digits, v);
  buf_->append(digits, r.ptr);
}

void json_writer::unsigned_value(std::uint64_t v) {
  before_value();
  char digits[24];
  auto r = std::to_chars(digits, digits + sizeof digits, v);
  buf_->append(digits, r.ptr);
}

void json_writer::write_string(std::string_view s) {
  // nlohmann's dump_escaped() with ensure_ascii = false: the two-character escapes it has, other
  // control characters as \u00xx (lower-case hex), everything else (DEL and valid UTF-8
  // included) as is; invalid UTF-8 is an error.
  std::string& out = *buf_;
  out.push_back('"');
  std::size_t plain = 0; // start of the run of bytes copied as they are
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      std::size_t n = utf8_sequence(s, i);
      if (n == 0)
        throw std::invalid_argument("JSON text: invalid UTF-8 byte at index " + std::to_string(i) +
                                    " of a string");
      i += n;
      continue;
    }
    out.append(s.data() + plain, i - plain);
    switch (c) {
    case '\b':
      out.append("\\b", 2);
      break;
    case '\t':
      out.append("\\t", 2);
      break;
    case '\n':
      out.append("\\n", 2);
      break;
    case '\f':
      out.append("\\f", 2);
      break;
    case '\r':
      out.append("\\r", 2);
      break;
    case '"':
      out.append("\\\"", 2);
      break;
    case '\\':
      out.append("\\\\", 2);
      break;
    default: {
      static constexpr char hex[] = "0123456789abcdef";
      const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
      out.append(esc, 6);
    }
    }
    plain = ++i;
  }
  out.append(s.data() + plain, s.size() - plain);
  out.push_back('"');
}

void json_writer::flush() {
  if (target_ == target::string || own_.empty()) return;
  if (target_ == target::stream) {
    stream_->write(own_.data(), static_cast<std::streamsize>(own_.size()));
    own_.clear();
    if (!*stream_) throw std::runtime_error("writing the JSON output failed");
    return;
  }
  std::size_t done = 0;
  while (done < own_.size()) {
    ssize_t n = ::write(fd_, own_.data() + done, own_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      own_.clear();
      if (errno == EPIPE) throw output_closed();
      throw std::system_error(errno, std::generic_category(), "writing the JSON output");
    }
    done += static_cast<std::size_t>(n);
  }
  own_.clear();
}

void json_writer::finish() {
  flush();
  if (target_ == target::stream) stream_->flush();
}

} // namespace backlog_lab::observer
