#pragma once
// Unconnected TCP sockets of one network namespace, opened ahead of use in batches: the one pool
// of the client groups and of the userspace proxy's outbound dials.
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <vector>

#include "harness/core/unique_fd.hpp"
#include "harness/lab/netns.hpp"

namespace backlog_lab::lab {

/// Outbound sockets for one namespace. A socket belongs to the namespace of the thread that
/// opened it, and entering a namespace costs setns(2) twice (about 10 us per socket, measured
/// here): paying that once per batch keeps it off the connections-per-second path.
class socket_pool {
public:
  /// How many sockets a refill opens.
  struct sizing {
    std::size_t batch = 16; ///< the first (and, unless adaptive, every) refill's size
    /// Double the batch when refills come within 10 ms of each other, halve it otherwise
    /// (down to 1), up to max_batch: a slow user holds few spare descriptors.
    bool adaptive = false;
    std::size_t max_batch = 64;
    bool no_delay = false; ///< set TCP_NODELAY on each (as Go does on every TCP connection)
  };

  /// Sockets will be opened in `ns` (a duplicated handle is kept).
  socket_pool(const netns& ns, sizing s);
  /// An open, non-blocking, close-on-exec TCP socket of `family` (AF_INET or AF_INET6) in the
  /// namespace, now the caller's; an empty fd with errno set if none could be opened (EMFILE
  /// included: at the open-file limit the caller counts it and goes on). Throws lab_error only
  /// if the thread cannot return to its own namespace.
  unique_fd take(int family);
  /// Closes the sockets not handed out yet.
  void clear();

private:
  /// Opens up to batch_ sockets of `family` into `spare`; returns the errno of the first
  /// failure, 0 if none.
  int refill(int family, std::vector<unique_fd>& spare);

  netns ns_;
  sizing sizing_;
  std::size_t batch_;
  std::chrono::steady_clock::time_point last_refill_{};
  std::vector<unique_fd> v4_;
  std::vector<unique_fd> v6_;
};

} // namespace backlog_lab::lab
