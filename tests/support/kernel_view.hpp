#pragma once
// The kernel's own tools run inside a namespace and parsed: the oracles the tests compare with.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "harness/lab/netns.hpp"

namespace backlog_lab::testing {

/// One TCP socket as `ss -tane` prints it.
struct ss_socket {
  std::string state;        ///< "ESTAB", "CLOSE-WAIT", "LISTEN", ...
  std::uint64_t recv_q = 0; ///< LISTEN: accept queue; else unread bytes
  std::uint64_t send_q = 0; ///< LISTEN: backlog; else unacknowledged bytes
  std::string local;        ///< as ss prints it: "*:30080", "[::ffff:198.51.100.1]:30720"
  std::string peer;
  std::uint64_t inode = 0; ///< ino: (0 for un-accepted children)
  std::uint32_t uid = 0;   ///< uid: (ss prints it only when non-zero)

  /// The port of `local` (0 for "*").
  std::uint16_t local_port() const { return port_of(local); }
  /// The port of `peer` (0 for "*").
  std::uint16_t peer_port() const { return port_of(peer); }
  /// The port after the last ':' of an ss address, 0 for "*".
  static std::uint16_t port_of(const std::string& address);
};

/// Runs `ss -H <flags>` in `ns` (flags must include -n and -e for inodes, e.g. "-tane" or
/// "-ltne") and parses every line; fails the test if ss fails.
std::vector<ss_socket> ss_sockets(const lab::netns& ns, const std::string& flags = "-tane");

/// The sockets of `all` whose local port is `port`.
std::vector<ss_socket> on_port(const std::vector<ss_socket>& all, std::uint16_t port);

/// The drops (skmem d<N>: SYNs and ACKs the listener dropped) of the listener on `port` as
/// `ss -tlmn` prints them in `ns`; empty if ss lists no listener on that port.
std::optional<std::uint64_t> ss_listener_drops(const lab::netns& ns, std::uint16_t port);

/// A counter of `ns` as `nstat -asz NAME` prints it (absolute, nstat's history left alone);
/// empty if nstat does not list it.
std::optional<std::int64_t> nstat_counter(const lab::netns& ns, const std::string& name);

/// The same counter, where the test expects nstat to list it: a missing one fails the test and
/// reads 0.
std::uint64_t nstat_value(const lab::netns& ns, const std::string& name);

} // namespace backlog_lab::testing
