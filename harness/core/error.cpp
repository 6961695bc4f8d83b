#include "harness/core/error.hpp"

#include <algorithm>
#include <cstring>

namespace backlog_lab {

input_error::input_error(std::string where, std::string what_expected)
    : std::runtime_error(where + ": " + what_expected), where_(std::move(where)),
      expected_(std::move(what_expected)) {}

std::string printable(std::string_view text, std::size_t max_bytes, bool keep_newlines) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 16);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max_bytes) {
      out += "... (" + std::to_string(text.size()) + " bytes in all)";
      break;
    }
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += keep_newlines ? "\n" : "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string errno_message(const std::string& what, int err) {
  return what + ": " + std::strerror(err) + " (errno " + std::to_string(err) + ")";
}

} // namespace backlog_lab
