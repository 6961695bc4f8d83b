#pragma once
// The proxier tests' three namespaces (client -> node -> pod): the runner's own lab::topology
// with one client address and one pod, whose fixed addresses their assertions name (one copy for
// the iptables and nftables tests).
#include <chrono>
#include <cstdint>
#include <gtest/gtest.h>
#include <utility>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/lab/topology.hpp"

namespace backlog_lab::testing {

/// Whether `fd` becomes readable within `timeout` (poll(2)).
bool wait_readable(int fd, std::chrono::milliseconds timeout);

/// Client 198.51.100.10 -> node 198.51.100.1 | node's bridge 203.0.113.1 -> pod 203.0.113.10
/// (lab::topology::build_nodeport), somaxconn 128 on the node; the client gives up a SYN within
/// about 3 s. Not movable: the namespace references point into `topology`.
struct nodeport_lab {
  static constexpr uint16_t node_port = 30720; ///< the port the tests' Services use

  lab::topology topology;
  const lab::netns& client;
  const lab::netns& node;
  const lab::netns& pod;
  net::io_context io{1};

  nodeport_lab();
  nodeport_lab(nodeport_lab&&) = delete;

  /// A pod listening on `address`:`port` (the pod namespace has 203.0.113.10; add_pod_address
  /// gives it more).
  tcp::acceptor backend(uint16_t port = 8080, const char* address = "203.0.113.10");
  /// Adds `address`/24 to the pod's link, for a second endpoint in the same namespace.
  void add_pod_address(const char* address);
  /// Connects from the client namespace to the node's `port`, non-blocking: with a blocking
  /// connect the ICMP answer to the SYN can arrive over veth while connect() still owns the
  /// socket, and tcp_v4_err() then keeps it as a soft error until the SYN is retransmitted.
  boost::system::error_code connect(tcp::socket& s, uint16_t port = node_port);
  /// Runs the io_context (the proxier's timers) until it has nothing left or `limit`.
  void run_io(std::chrono::milliseconds limit = std::chrono::seconds(2));
};

/// A request through the NodePort reaches the pod behind `backend`, masqueraded (the pod sees
/// the node's 203.0.113.1), and its answer comes back.
::testing::AssertionResult served_by_backend(nodeport_lab& lab, tcp::acceptor& backend);

/// Connects `connections` times through the NodePort, one after another, and counts which of
/// two pods accepted each: {first, second}. A connection neither accepts within 2 s counts in
/// neither.
std::pair<int, int> spread_over(nodeport_lab& lab, tcp::acceptor& first, tcp::acceptor& second,
                                int connections);

} // namespace backlog_lab::testing
