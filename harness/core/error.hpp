#pragma once
// Error types that reach the user, and the documented exit codes they map to.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace backlog_lab {

/// Process exit codes; documented in docs/exit-codes.md and stable across releases.
enum class exit_code : int {
  ok = 0,                  ///< the run completed and every expectation held
  expectations_failed = 1, ///< the run completed and at least one expectation failed
  bad_input = 2,           ///< bad flag, scenario file, sysctl, or a lab that could not be built
  interrupted = 130,       ///< stopped by SIGINT/SIGTERM after cleaning up
  output_closed = 141, ///< stdout's reader went away (EPIPE): 128 + SIGPIPE, as a shell shows it
};

/// Bad user input: a flag, a scenario file or a value; says where and what was expected.
class input_error : public std::runtime_error {
public:
  /// `where` is a file name and/or JSON pointer, `what_expected` the requirement that failed.
  input_error(std::string where, std::string what_expected);
  const std::string& where() const noexcept { return where_; }
  const std::string& expected() const noexcept { return expected_; }

private:
  std::string where_;
  std::string expected_;
};

/// The lab could not be built or driven: privileges, a kernel feature, a sysctl the kernel lacks.
class lab_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Our output's reader went away (a write gave EPIPE, SIGPIPE being ignored): the command ends
/// quietly with exit_code::output_closed, as `cmd | head` expects of a command killed by SIGPIPE.
class output_closed : public std::runtime_error {
public:
  output_closed() : std::runtime_error("the output's reader went away (EPIPE)") {}
};

/// `text` safe to print: control bytes escaped (\n, \t, \xNN; newlines kept when
/// `keep_newlines`) and at most `max_bytes` kept, the rest summarised by its length. Input
/// (names, values, a program's output) reaches messages and must not forge lines or flood them.
std::string printable(std::string_view text, std::size_t max_bytes = 2000,
                      bool keep_newlines = false);

/// Formats errno as "<what>: <strerror> (errno N)".
std::string errno_message(const std::string& what, int err);

} // namespace backlog_lab
