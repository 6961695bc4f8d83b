#include "harness/core/error.hpp"

#include <cstring>

namespace backlog_lab {

input_error::input_error(std::string where, std::string what_expected)
    : std::runtime_error(where + ": " + what_expected), where_(std::move(where)),
      expected_(std::move(what_expected)) {}

std::string errno_message(const std::string& what, int err) {
  return what + ": " + std::strerror(err) + " (errno " + std::to_string(err) + ")";
}

} // namespace backlog_lab
