#pragma once
// What the comparison measures with: processes run inside a lab namespace with their wall and
// CPU time, per-run figures with their spread, process memory and CPU counters, CPU pinning.
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "harness/lab/netns.hpp"

namespace backlog_lab::bench {

/// One quantity measured once per run.
struct figure {
  std::string unit;
  std::vector<double> runs;

  /// The middle run (the mean of the two middle ones for an even count); 0 if none.
  double median() const;
  /// The smallest run; 0 if none.
  double min() const;
  /// The largest run; 0 if none.
  double max() const;
};

/// How a peer or tool process ended.
struct exec_result {
  int exit_status = -1; ///< exit code, or 128 + signal
  bool timed_out = false;
  double wall_ms = 0; ///< fork to reap
  double cpu_ms = 0;  ///< user + system time of the process (wait4 rusage)
  std::string out;    ///< stdout, if it was captured
};

/// Runs `argv` inside `ns` (null: here), stdout captured or sent to /dev/null, stderr to
/// /dev/null, pinned to `cpu` if given (>= 0); killed at `timeout`. Throws lab_error if it cannot
/// be started.
exec_result exec_in(const lab::netns* ns, const std::vector<std::string>& argv, bool capture,
                    int cpu = -1, std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// A long-running peer (nginx, haproxy, proxy_sim in a forked child) with PR_SET_PDEATHSIG.
class peer_process {
public:
  /// Execs `argv` in `ns`, pinned to `cpu` (>= 0), stdout/stderr to `log_path` (or /dev/null).
  static peer_process start(const lab::netns& ns, const std::vector<std::string>& argv, int cpu,
                            const std::string& log_path = {});
  /// Forks a child that enters `ns`, pins itself to `cpu` and runs `body` (call single-threaded).
  template <class F> static peer_process fork_body(const lab::netns& ns, int cpu, F body);

  peer_process() = default;
  peer_process(peer_process&& other) noexcept;
  peer_process& operator=(peer_process&& other) noexcept;
  peer_process(const peer_process&) = delete;
  peer_process& operator=(const peer_process&) = delete;
  /// SIGKILL and reap.
  ~peer_process();

  /// The process id (-1 once stopped).
  pid_t pid() const noexcept { return pid_; }
  /// Whether it is still running.
  bool alive() const;
  /// User + system CPU time consumed so far, from /proc/PID/stat, in ms.
  double cpu_ms() const;
  /// SIGKILL and reap now (idempotent).
  void stop();

private:
  static pid_t fork_in(const lab::netns& ns, int cpu); // 0 in the child
  explicit peer_process(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

template <class F> peer_process peer_process::fork_body(const lab::netns& ns, int cpu, F body) {
  pid_t pid = fork_in(ns, cpu);
  if (pid == 0) {
    int code = 125;
    try {
      code = body();
    } catch (...) {
    }
    ::_exit(code);
  }
  return peer_process(pid);
}

/// Waits until a TCP connect to 127.0.0.1:`port` inside `ns` succeeds; false after `timeout`.
bool wait_listening(const lab::netns& ns, unsigned short port,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// Pins the calling thread to `cpu` (-1: every CPU) while alive; restores the old mask after.
class pin_scope {
public:
  explicit pin_scope(int cpu);
  ~pin_scope();
  pin_scope(const pin_scope&) = delete;
  pin_scope& operator=(const pin_scope&) = delete;

private:
  std::vector<unsigned char> saved_;
  bool restore_ = false;
};

/// CPU time (user + system) of the calling thread, in ms.
double thread_cpu_ms();
/// A field of /proc/self/status in KiB ("VmRSS", "RssAnon"); 0 if missing.
double self_status_kib(const std::string& field);

/// The machine: nproc, kernel release, CPU model, memory; and the load averages now.
struct machine_info {
  unsigned nproc = 0;
  std::string kernel;
  std::string cpu_model;
  double mem_gib = 0;
};
/// What this machine is (for the results file).
machine_info describe_machine();
/// The 1, 5 and 15 minute load averages.
std::vector<double> load_averages();

/// Milliseconds since `start`.
inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

} // namespace backlog_lab::bench
