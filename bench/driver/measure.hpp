#pragma once
// What the comparison measures with: processes run inside a lab namespace with their wall and
// CPU time, per-run figures with their spread, process memory and CPU counters, CPU pinning.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "harness/lab/netns.hpp"
#include "harness/lab/process.hpp"

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

/// A long-running peer (nginx, haproxy, proxy_sim in a forked child): a lab::child_process
/// (PR_SET_PDEATHSIG, SIGKILL and reap when destroyed) pinned to a CPU, with its CPU time.
class peer_process {
public:
  /// Execs `argv` in `ns`, pinned to `cpu` (>= 0), stdout/stderr to `log_path` (or /dev/null).
  static peer_process start(const lab::netns& ns, const std::vector<std::string>& argv, int cpu,
                            const std::string& log_path = {});
  /// Forks a child that enters `ns`, pins itself to `cpu` and runs `body` (call single-threaded).
  static peer_process fork_body(const lab::netns& ns, int cpu, const std::function<int()>& body);

  /// The process id (-1 once stopped).
  pid_t pid() const noexcept { return process_.pid(); }
  /// Whether it is still running (not exited, not a zombie).
  bool alive() const;
  /// User + system CPU time consumed so far, from /proc/PID/stat, in ms.
  double cpu_ms() const;
  /// SIGKILL and reap now (idempotent).
  void stop() { process_.kill_and_wait(); }

private:
  explicit peer_process(lab::child_process p) : process_(std::move(p)) {}
  lab::child_process process_;
};

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
/// CPU time (user + system) of the children this process has reaped so far, in ms.
double children_cpu_ms();
/// Waits until the machine's CPUs are mostly idle (under 15% busy over 200 ms, from /proc/stat)
/// or `limit` passes; returns the ms waited. The kernel frees a dropped namespace's rules and
/// sockets in the background, and the next measurement would share the CPUs with that.
double wait_for_quiet_cpus(std::chrono::milliseconds limit);
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

/// Runs `a` then `b` on even runs and `b` then `a` on odd ones, so that neither always meets
/// the warmer (or colder) machine.
template <class A, class B> void in_alternating_order(int run, A&& a, B&& b) {
  if (run % 2 == 0) {
    a();
    b();
  } else {
    b();
    a();
  }
}

/// Milliseconds since `start`.
inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

} // namespace backlog_lab::bench
