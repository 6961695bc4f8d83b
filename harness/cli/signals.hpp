#pragma once
// SIGINT/SIGTERM turned into a flag the runner polls, so a run can still tear its lab down.
#include <atomic>

namespace backlog_lab::cli {

/// While alive, the first SIGINT or SIGTERM sets requested(); a second one kills the process
/// the default way (the lab still leaves nothing behind: it is anonymous and fd-held).
class scoped_stop_signals {
public:
  scoped_stop_signals();
  ~scoped_stop_signals();
  scoped_stop_signals(const scoped_stop_signals&) = delete;
  scoped_stop_signals& operator=(const scoped_stop_signals&) = delete;
  /// Set once a stop was asked for.
  const std::atomic<bool>& requested() const noexcept;
};

} // namespace backlog_lab::cli
