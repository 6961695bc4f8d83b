#pragma once
// A namespace full of TCP sockets for census benchmarks: connection pairs whose server side is
// an un-accepted child of a never-accepting listener (so it holds no file descriptor anywhere)
// and whose client side is held open by forked worker processes (the per-process open-file
// limit is 20,000, so 50,000 clients need several). Some pairs are half-closed by the client:
// the child sits in CLOSE_WAIT with the request bytes + FIN unread, as on the 2018 node.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "harness/lab/netns.hpp"
#include "harness/lab/process.hpp"
#include "harness/observer/tcp_state.hpp"

namespace backlog_lab::bench {

/// What a farm holds.
struct farm_spec {
  std::size_t pairs = 50'000;        ///< client/server connection pairs
  std::size_t close_wait = 20'000;   ///< of those, half-closed by the client: server CLOSE_WAIT
  std::size_t listeners = 50;        ///< never-accepting listeners on 127.0.0.1:20000+i
  std::uint32_t request_bytes = 100; ///< sent by half-closing clients before their FIN
  std::size_t clients_per_process = 15'000; ///< client fds per worker process (limit 20,000)
  unsigned tcp_hash_entries = 65'536;       ///< buckets of the namespace's own TCP hash table
};

/// The states a farm's sockets are in, counted by sock_diag after it was built.
struct farm_census {
  std::size_t total = 0;
  std::size_t listen = 0;
  std::size_t established = 0; ///< clients and un-accepted children of open pairs
  std::size_t close_wait = 0;  ///< un-accepted children of half-closed pairs
  std::size_t fin_wait2 = 0;   ///< the half-closed clients
  std::size_t other = 0;
};

/// A namespace of `2 * pairs + listeners` sockets; everything goes when it is destroyed
/// (workers killed, listeners closed, which resets the children, namespace released).
class socket_farm {
public:
  /// Builds the farm. Forks workers: call it while the process is single-threaded. Throws
  /// lab_error if the lab cannot be built or the sockets do not reach the expected states.
  static socket_farm build(const farm_spec& spec);

  socket_farm(socket_farm&&) noexcept;
  socket_farm& operator=(socket_farm&&) noexcept;
  socket_farm(const socket_farm&) = delete;
  socket_farm& operator=(const socket_farm&) = delete;
  ~socket_farm();

  /// The namespace the sockets live in.
  const lab::netns& ns() const noexcept { return ns_; }
  /// What was asked for.
  const farm_spec& spec() const noexcept { return spec_; }
  /// What sock_diag counted once the farm was ready.
  const farm_census& counted() const noexcept { return counted_; }
  /// Worker processes holding the client sockets.
  std::size_t workers() const noexcept { return workers_.size(); }

private:
  socket_farm() = default;
  void close_listeners() noexcept;

  farm_spec spec_;
  lab::netns ns_;
  std::vector<int> listeners_;
  std::vector<lab::child_process> workers_;
  farm_census counted_;
};

/// Counts the sockets of `ns` by state (one sock_diag dump).
farm_census count_states(const lab::netns& ns);

} // namespace backlog_lab::bench
