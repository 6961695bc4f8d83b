#pragma once
// A user's program (nginx, haproxy, wrk, their own server) run inside a lab namespace as one
// unit: its whole process tree is started, frozen, resumed and killed together, and dies with
// the run however the run ends, SIGKILL of backlog-lab included.
//
// Mechanism (docs/your-software.md): each start forks a small keeper process that enters the
// namespace, makes itself a child subreaper (PR_SET_CHILD_SUBREAPER) and forks the program.
// Every process the program forks stays a descendant of the keeper, even when its parent dies
// (an nginx worker whose master was killed is re-parented to the keeper, not to init). The
// keeper has PR_SET_PDEATHSIG(SIGTERM): when backlog-lab dies for any reason, the kernel tells
// the keeper, which SIGKILLs every descendant (walking /proc by parent pid until none is
// left) and exits. When the program's main process exits, the keeper kills what is left of
// its tree and exits with the main process's exit code. The host here has cgroup v1 only, so
// no cgroup.kill/cgroup.freeze: freeze is SIGSTOP to every process of the tree.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/core/unique_fd.hpp"
#include "harness/lab/netns.hpp"

namespace backlog_lab::lab {

/// What to run and where its output goes.
struct program_spec {
  std::string name;                       ///< for messages and log file names ("backend-web")
  std::vector<std::string> argv;          ///< argv[0] is looked up in PATH unless it has a '/'
  std::map<std::string, std::string> env; ///< added to (or replacing in) backlog-lab's own
  std::string log_dir; ///< stdout/stderr to LOG_DIR/NAME.stdout|.stderr; empty = in memory
  /// A directory the keeper removes if backlog-lab dies before the program (rendered configs,
  /// pid files); on a normal end its owner removes it.
  std::string cleanup_dir;
};

/// A started program's process tree; killed (whole tree, SIGKILL) when destroyed.
class program {
public:
  /// Starts `spec` in `ns` (the current namespace when null). Throws lab_error naming the
  /// command if it cannot be executed (not found, not executable); returns once exec worked.
  static program start(const netns* ns, const program_spec& spec);

  program() = default;
  program(program&& other) noexcept;
  program& operator=(program&& other) noexcept;
  program(const program&) = delete;
  program& operator=(const program&) = delete;
  ~program();

  /// The program's main process (the one exec'd), or -1 when not running.
  pid_t main_pid() const noexcept { return running_ ? main_pid_ : -1; }
  /// Whether the tree is still alive (polls; reaps the keeper when it has exited).
  bool running();
  /// The main process's exit code (128 + signal when killed) once it has ended.
  std::optional<int> exit_code();
  /// Every live process of the tree (the keeper excluded), the main process first.
  std::vector<pid_t> processes() const;
  /// SIGSTOP to every process of the tree (repeated until no process is left running).
  void freeze();
  /// SIGCONT to every process of the tree.
  void resume();
  /// Sends `sig` to the main process only (a reload: SIGHUP to nginx's master, SIGUSR2 to
  /// haproxy's master-worker).
  void signal(int sig) const;
  /// SIGKILL to every process of the tree; returns once all are gone.
  void kill();
  /// Whether the tree is frozen (freeze() without resume()).
  bool frozen() const noexcept { return frozen_; }

  /// The last `n` lines the program wrote to stderr (or stdout), across restarts.
  std::string last_lines(bool stderr_stream, size_t n = 10) const;
  /// "argv0 arg1 ..." for messages.
  std::string command_line() const;
  const program_spec& spec() const noexcept { return spec_; }

private:
  pid_t keeper_ = -1;
  pid_t main_pid_ = -1;
  bool running_ = false;
  bool frozen_ = false;
  std::optional<int> exit_code_;
  program_spec spec_;
  unique_fd out_;
  unique_fd err_;
};

/// How waiting for a program to accept connections ended.
enum class readiness { ready, exited, timed_out };

/// Connects from `ns` to `address:port` every 20 ms until a connection is accepted by the
/// kernel, the program exits, or `timeout` passes.
readiness wait_until_accepting(program& p, const netns& ns, const std::string& address,
                               uint16_t port, std::chrono::milliseconds timeout);

/// The processes descending from `root` (not `root` itself), parents before children, from the
/// parent links in /proc/PID/stat.
std::vector<pid_t> descendants_of(pid_t root);

} // namespace backlog_lab::lab
