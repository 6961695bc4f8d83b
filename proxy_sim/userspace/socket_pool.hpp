#pragma once
// Unconnected TCP sockets of one network namespace, opened ahead of use in batches.
#include <cstddef>
#include <vector>

#include "harness/lab/netns.hpp"

namespace backlog_lab::proxy_sim {

/// Outbound sockets for the node namespace. A socket belongs to the namespace of the thread that
/// opened it, and entering a namespace costs setns(2) twice (about 10 us, measured here): paying
/// that once per batch instead of once per dial keeps it off the connections-per-second path.
class socket_pool {
public:
  /// Sockets will be opened in `ns` (duplicated handle), `batch` at a time.
  socket_pool(const lab::netns& ns, std::size_t batch);
  ~socket_pool();
  socket_pool(const socket_pool&) = delete;
  socket_pool& operator=(const socket_pool&) = delete;

  /// A non-blocking, close-on-exec TCP socket of `family` (AF_INET or AF_INET6) in the
  /// namespace, now owned by the caller; or -errno if none could be opened (EMFILE, ...).
  int take(int family);
  /// Closes the sockets not handed out yet.
  void clear();

private:
  lab::netns ns_;
  std::size_t batch_;
  std::vector<int> v4_;
  std::vector<int> v6_;
};

} // namespace backlog_lab::proxy_sim
