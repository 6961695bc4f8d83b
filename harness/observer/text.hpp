#pragma once
// Terminal forms of the observer's results: ss-style socket lines, listener summaries, counters.
#include <ostream>
#include <span>

#include "harness/observer/census.hpp"
#include "harness/observer/counters.hpp"

namespace backlog_lab::observer {

/// Prints sockets as `ss -tan` does (State Recv-Q Send-Q Local Address:Port Peer Address:Port);
/// `extended` adds ss -e's "uid:N" (when non-zero), "ino:N" and the shutdown marker.
void print_sockets(std::ostream& out, std::span<const tcp_socket> sockets, bool extended);

/// Prints one block per listener: queue/backlog with a FULL marker, children by state,
/// un-accepted children (inode 0) with their bytes, Recv-Q groups and peers (at most
/// `max_peers` lines of each).
void print_listeners(std::ostream& out, const census& c, std::size_t max_peers = 8);

/// Prints per-state totals on one line ("ESTAB 3, CLOSE-WAIT 129, LISTEN 1").
void print_totals(std::ostream& out, const state_counts& totals);

/// Prints "name value" lines, nstat-style; `skip_zero` hides zero values.
void print_counters(std::ostream& out, const counter_map& counters, bool skip_zero);

} // namespace backlog_lab::observer
