#pragma once
// Namespaces full of TCP sockets for census and doctor benchmarks: connection pairs whose server
// side is an un-accepted child of a never-accepting listener (so it holds no file descriptor
// anywhere) and whose client side is held open by forked worker processes living in the
// namespace (the per-process open-file limit is 20,000, so 50,000 clients need several). Some
// pairs are half-closed by the client: the child sits in CLOSE_WAIT with the request bytes + FIN
// unread, as on the 2018 node. A farm of several namespaces can have some whose workers accept
// every connection instead (empty queues: the healthy pods of a node).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "harness/lab/netns.hpp"
#include "harness/lab/process.hpp"
#include "harness/observer/tcp_state.hpp"

namespace backlog_lab::bench {

/// What a farm holds.
struct farm_spec {
  std::size_t namespaces = 1;      ///< namespaces, each holding what the fields below say
  std::size_t pairs = 50'000;      ///< client/server connection pairs per namespace
  std::size_t close_wait = 20'000; ///< of those, half-closed by the client: server CLOSE_WAIT
  std::size_t listeners = 50;      ///< listeners per namespace on 127.0.0.1:20000+i
  /// Of the namespaces, how many (the last ones) have workers that accept every connection and
  /// hold its server side open (queues empty); the listeners of the others never accept.
  std::size_t accepting_namespaces = 0;
  /// Never-accepting listeners get a backlog of their share of children - 1, so that their
  /// queues end exactly full (Recv-Q = backlog + 1, docs/reference/kernel.md 1); else the
  /// backlog leaves room.
  bool full_queues = false;
  std::uint32_t request_bytes = 100;        ///< sent by half-closing clients before their FIN
  std::size_t clients_per_process = 15'000; ///< client fds per worker process (limit 20,000)
  unsigned tcp_hash_entries = 65'536;       ///< buckets of the namespace's own TCP hash table
};

/// The states a farm's sockets are in, counted by sock_diag after it was built (summed over its
/// namespaces).
struct farm_census {
  std::size_t total = 0;
  std::size_t listen = 0;
  std::size_t established = 0; ///< clients and server sides of open pairs
  std::size_t close_wait = 0;  ///< server sides (children) of half-closed pairs
  std::size_t fin_wait2 = 0;   ///< the half-closed clients
  std::size_t other = 0;
};

/// `namespaces` namespaces of `2 * pairs + listeners` sockets each; everything goes when it is
/// destroyed (workers killed, listeners closed, which resets the children, namespaces released).
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

  /// The (first) namespace the sockets live in.
  const lab::netns& ns() const noexcept { return namespaces_.front(); }
  /// Every namespace of the farm, in build order (the accepting ones last).
  const std::vector<lab::netns>& namespaces() const noexcept { return namespaces_; }
  /// Whether the workers of namespace `k` accept their connections (its queues are empty).
  bool accepting(std::size_t k) const noexcept {
    return k + spec_.accepting_namespaces >= namespaces_.size();
  }
  /// What was asked for.
  const farm_spec& spec() const noexcept { return spec_; }
  /// What sock_diag counted once the farm was ready.
  const farm_census& counted() const noexcept { return counted_; }
  /// Worker processes holding the client sockets (and accepted server sides), in all.
  std::size_t workers() const noexcept { return workers_.size(); }

private:
  socket_farm() = default;
  void close_listeners() noexcept;

  farm_spec spec_;
  std::vector<lab::netns> namespaces_;
  std::vector<int> listeners_; ///< of every namespace
  std::vector<lab::child_process> workers_;
  farm_census counted_;
};

/// Counts the sockets of `ns` by state (one sock_diag dump).
farm_census count_states(const lab::netns& ns);

} // namespace backlog_lab::bench
