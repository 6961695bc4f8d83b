#pragma once
// Child processes of a lab: the kernel's own tools run inside a namespace, and forked workers.
// Every child gets PR_SET_PDEATHSIG(SIGKILL), so none outlives the lab, even after SIGKILL.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "harness/lab/netns.hpp"

namespace backlog_lab::lab {

/// What a finished command printed and how it ended.
struct command_result {
  int exit_status = -1;   ///< exit code, or 128 + signal number if killed
  bool timed_out = false; ///< true if it was killed at the deadline
  std::string out;        ///< standard output
  std::string err;        ///< standard error
};

/// Runs `argv` (argv[0] looked up in PATH) inside `ns` (or the current namespace when null),
/// feeding `input` on stdin; kills it at `timeout`. Throws lab_error if it cannot start.
command_result run_command(const netns* ns, const std::vector<std::string>& argv,
                           const std::string& input = {},
                           std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// Whether an executable named `name` is on PATH.
bool have_program(const std::string& name);

/// A forked child running a function in a namespace; killed with SIGKILL and reaped when
/// destroyed. The function's return value is the child's exit code.
class child_process {
public:
  /// Forks; the child enters `ns` (if given), then runs `body`. Call while single-threaded.
  static child_process spawn(const netns* ns, const std::function<int()>& body);

  child_process() = default;
  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&& other) noexcept;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process();

  pid_t pid() const noexcept { return pid_; }
  /// Sends `sig` (SIGSTOP/SIGCONT freeze and resume it).
  void signal(int sig) const;
  /// Kills (SIGKILL) and reaps; returns the wait status, or -1 if already reaped.
  int kill_and_wait();
  /// Waits up to `timeout` for a normal exit; returns the exit code or -1 on timeout.
  int wait_for(std::chrono::milliseconds timeout);

private:
  explicit child_process(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

} // namespace backlog_lab::lab
