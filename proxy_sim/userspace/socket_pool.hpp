#pragma once
// Unconnected TCP sockets of one network namespace, opened ahead of use in batches.
#include <cstddef>
#include <vector>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"

namespace backlog_lab::proxy_sim {

/// Outbound sockets for the node namespace. A socket belongs to the namespace of the thread that
/// opened it, and entering a namespace costs setns(2) twice (about 10 us per socket, measured
/// here): paying that once per batch keeps it off the connections-per-second path.
class socket_pool {
public:
  /// Sockets will be opened in `ns` (a duplicated handle is kept), `batch` at a time.
  socket_pool(net::io_context& io, const lab::netns& ns, std::size_t batch);

  /// An open, non-blocking TCP socket of `protocol` in the namespace, now the caller's; an
  /// unopened socket and `ec` set if none could be opened (EMFILE, ...).
  tcp::socket take(const tcp& protocol, boost::system::error_code& ec);
  /// Closes the sockets not handed out yet.
  void clear();

private:
  net::io_context& io_;
  lab::netns ns_;
  std::size_t batch_;
  std::vector<tcp::socket> v4_;
  std::vector<tcp::socket> v6_;
};

} // namespace backlog_lab::proxy_sim
