#pragma once
// Unconnected TCP sockets of one network namespace, opened ahead of use in batches.
#include <sys/socket.h>

#include <cstddef>
#include <vector>

#include "harness/core/unique_fd.hpp"
#include "harness/lab/netns.hpp"

namespace backlog_lab::proxy_sim {

/// Outbound sockets for the node namespace. A socket belongs to the namespace of the thread that
/// opened it, and entering a namespace costs setns(2) twice (about 10 us per socket, measured
/// here): paying that once per batch keeps it off the connections-per-second path.
class socket_pool {
public:
  /// Sockets will be opened in `ns` (a duplicated handle is kept), `batch` at a time.
  socket_pool(const lab::netns& ns, std::size_t batch);
  /// An open, non-blocking, close-on-exec TCP socket of `family` (AF_INET or AF_INET6) in the
  /// namespace with TCP_NODELAY set (as Go sets it on every TCP connection), now the caller's;
  /// an empty fd with errno set if none could be opened (EMFILE, ...).
  unique_fd take(int family);
  /// Closes the sockets not handed out yet.
  void clear();

private:
  lab::netns ns_;
  std::size_t batch_;
  std::vector<unique_fd> v4_;
  std::vector<unique_fd> v6_;
};

} // namespace backlog_lab::proxy_sim
