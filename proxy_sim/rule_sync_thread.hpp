#pragma once
// Where a proxier's rule tool runs (iptables-restore, nft): on a thread of its own, as
// kube-proxy's sync loop runs beside its other goroutines. The lab's clients, pods, sampler and
// 1.37's localhost proxy share one io_context; a sync run on it would stall them all for the
// tool's time (seconds for 10,000 Services), which no real node does.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "harness/core/asio.hpp"

namespace backlog_lab::proxy_sim {

/// One rule-tool job at a time, off the io_context's thread; its outcome is handed back there.
class rule_sync_thread {
public:
  /// A job returns the tool's error, or an empty string.
  using job = std::function<std::string()>;
  /// Runs on the io_context's thread with the job's result.
  using completion = std::function<void(const std::string& error)>;

  explicit rule_sync_thread(net::io_context& io) : io_(io) {}
  /// Waits for a job in flight; its completion does not run.
  ~rule_sync_thread();
  rule_sync_thread(const rule_sync_thread&) = delete;
  rule_sync_thread& operator=(const rule_sync_thread&) = delete;

  /// Starts `work` on a new thread; `done` runs on the io_context's thread when it ends. Only
  /// when not busy(). An exception from `work` becomes its error text.
  void run(job work, completion done);
  /// A job has started and its completion has not run yet.
  bool busy() const noexcept { return busy_; }
  /// Waits for the job in flight, if any, and runs its completion now, on the caller's thread
  /// (the io_context's), instead of later (before a teardown that must see its result).
  void finish();

private:
  struct pending {
    completion done;
    std::string error;
    std::atomic<bool> taken{false}; ///< the completion ran (or will not)
  };
  void join() noexcept;

  net::io_context& io_;
  std::thread thread_;
  std::shared_ptr<pending> pending_;
  bool busy_ = false;
};

} // namespace backlog_lab::proxy_sim
