#pragma once
// A streaming JSON writer whose output is, byte for byte, what nlohmann::json::dump(2) prints for
// the same document: `observe --json` writes a census of any size through it in bounded memory,
// and the tree forms of harness/observer/json.hpp are parsed back from its output, so the two
// cannot drift. Integers, booleans, null and UTF-8 strings only (no floating point: nothing the
// observer prints has it).
#include <concepts>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace backlog_lab::observer {

/// Writes one JSON document as nlohmann's dump(2) would print it, to an fd, a stream or a string.
/// Members must be given in increasing key order (nlohmann's objects are std::map-ordered);
/// debug builds check it.
class json_writer {
public:
  /// Writes to `fd` in chunks of about 64 KiB. EPIPE (the reader went away) throws
  /// backlog_lab::output_closed; another write error throws std::system_error.
  explicit json_writer(int fd);
  /// Writes to `out` in chunks of about 64 KiB; a failed stream throws std::runtime_error.
  explicit json_writer(std::ostream& out);
  /// Appends to `out`.
  explicit json_writer(std::string& out);
  json_writer(const json_writer&) = delete;
  json_writer& operator=(const json_writer&) = delete;
  /// Drops what finish() did not write (a destructor must not throw).
  ~json_writer();

  /// Opens an object (as a value: top level, array element or after key()).
  void begin_object();
  /// Closes the innermost object.
  void end_object();
  /// Opens an array.
  void begin_array();
  /// Closes the innermost array.
  void end_array();
  /// The next member's key, greater than the previous key of the same object.
  void key(std::string_view k);
  /// A string value. Throws std::invalid_argument (as dump() throws type_error 316) if `s` is
  /// not valid UTF-8.
  void value(std::string_view s);
  /// A string value.
  void value(const char* s) { value(std::string_view(s)); }
  /// A string value.
  void value(const std::string& s) { value(std::string_view(s)); }
  /// true or false.
  void value(bool b);
  /// An integer.
  template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) void value(T v) {
    if constexpr (std::is_signed_v<T>)
      signed_value(v);
    else
      unsigned_value(v);
  }
  /// null.
  void null();
  /// key(k) then value(v).
  template <class T> void member(std::string_view k, const T& v) {
    key(k);
    value(v);
  }

  /// How deep the next value nests: 0 at the top level, 1 inside one container, ...
  std::size_t depth() const noexcept { return empty_.size() - 1; }
  /// A value its caller rendered exactly as dump(2) prints it at depth(): written as it is,
  /// after the comma, newline and indentation its place needs (the fast path of a census's
  /// sockets; the caller answers for valid, escaped, UTF-8 text).
  void rendered_value(std::string_view json) {
    before_value();
    buf_->append(json);
  }

  /// Writes `t` as it is, outside any value (the newline after a document).
  void text(std::string_view t) { buf_->append(t); }

  /// Writes out everything buffered (fd and stream targets; a string has it already).
  void finish();

  /// Whether `s` is valid UTF-8 as dump() requires it (no overlong forms, surrogates or code
  /// points above U+10FFFF).
  static bool valid_utf8(std::string_view s) noexcept;

private:
  enum class target { fd, stream, string };
  void signed_value(std::int64_t v);
  void unsigned_value(std::uint64_t v);
  void before_value();
  void next_element();
  void indent(std::size_t depth);
  void write_string(std::string_view s);
  void maybe_flush() {
    if (target_ != target::string && buf_->size() >= chunk_bytes) flush();
  }
  void flush();

  static constexpr std::size_t chunk_bytes = 64 * 1024;
  target target_;
  int fd_ = -1;
  std::ostream* stream_ = nullptr;
  std::string own_;
  std::string* buf_; ///< own_ for fd and stream targets, the caller's string otherwise
  std::vector<bool> empty_{false}; ///< per open container (index = depth): nothing in it yet
  bool after_key_ = false;
#ifndef NDEBUG
  std::vector<std::string> last_key_{std::string()};
#endif
};

} // namespace backlog_lab::observer
