#pragma once
// The file descriptors a run will hold, estimated from the typed scenario before anything is
// built, so that a lab too big for this process's RLIMIT_NOFILE is refused whole rather than
// failing half-built with EMFILE. The per-item costs were measured on this project's machine
// (docs/scenario-format.md#what-a-lab-holds).
#include <cstdint>
#include <string>
#include <vector>

#include "harness/scenario/model.hpp"

namespace backlog_lab::runner {

/// Descriptors each part of a lab holds in the backlog-lab process, as measured (peak
/// /proc/PID/fd counts of runs with N pods, N Services and N connections).
struct descriptor_costs {
  /// io_context, observer, netlink sockets, stdio, the node and clients namespaces, tools' pipes.
  static constexpr std::uint64_t fixed = 64;
  /// A pod: its namespace, counter files, listener and its actor's epoll; measured 5.0.
  static constexpr std::uint64_t per_pod = 5;
  /// A NodePort socket held by the proxy (iptables presets 1.5 and 1.6.5, every userspace
  /// Service); measured 1.0.
  static constexpr std::uint64_t per_held_node_port = 1;
  /// A built-in client group: its epoll set and its socket pool (up to 64 spare sockets).
  static constexpr std::uint64_t per_client_group = 66;
  /// The userspace proxier's epoll set and socket pool (64 spare sockets).
  static constexpr std::uint64_t userspace_proxier = 66;
  /// A connection in flight: the client's socket and the built-in backend's accepted one.
  static constexpr std::uint64_t per_connection = 2;
  /// What a userspace proxier adds per connection: the accepted and the dialed socket.
  static constexpr std::uint64_t per_userspace_connection = 2;
  /// An exec program (proxy, backend or client): its stdout and stderr pipes and pidfd.
  static constexpr std::uint64_t per_exec_program = 4;
};

/// One part of the estimate, for the error message.
struct descriptor_part {
  std::string where; ///< JSON pointer of the part, e.g. "/services"
  std::string what;  ///< "10000 held NodePorts"
  std::uint64_t descriptors = 0;
};

/// What a run of a scenario needs, part by part.
struct descriptor_estimate {
  std::vector<descriptor_part> parts; ///< those that cost anything, fixed overhead last
  std::uint64_t total = 0;
};

/// The descriptors a run of `s` holds at most in this process. Built-in client groups with an
/// open-loop arrival (constant, poisson) count their group overhead only, unless bounded by
/// max_connections: how many of their connections are in flight depends on how fast the lab
/// answers, not on the scenario.
descriptor_estimate estimate_descriptors(const scenario::scenario& s);

/// Refuses (input_error naming `s.source`, the costly parts and what to do) a scenario whose
/// estimate exceeds `available`, the descriptors this process may still open.
void check_descriptor_budget(const scenario::scenario& s, std::uint64_t available);

/// RLIMIT_NOFILE after raising the soft limit to the hard one, less the descriptors open now.
std::uint64_t available_descriptors();

} // namespace backlog_lab::runner
