#pragma once
// `backlog-lab observe --demo`: the incident's core in one namespace and a few seconds. A
// listener with backlog 128 (somaxconn 128) never accepts; 200 clients connect in parallel;
// those that connect send a request and close. The kernel then shows the full queue at
// backlog + 1, its CLOSE-WAIT children at request bytes + 1 with inode 0, and dropped SYNs.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "harness/observer/census.hpp"
#include "harness/observer/counters.hpp"

namespace backlog_lab::demo {

using observer::census;
using observer::counter_map;
using observer::endpoint;
using observer::listener_summary;

/// What the demo builds.
struct demo_options {
  std::uint32_t connections = 200;   ///< clients started at once
  int backlog = 128;                 ///< listen() backlog
  std::uint32_t somaxconn = 128;     ///< net.core.somaxconn of the lab namespace
  std::uint32_t request_bytes = 100; ///< each connected client sends this, then closes (FIN)
  /// How long clients may take to connect; those still in SYN-SENT then are closed.
  std::chrono::milliseconds connect_window{1500};
  /// Polled while clients connect: once set, the demo ends early (its namespace still goes).
  const std::atomic<bool>* stop = nullptr;
};

/// What the demo saw; every number comes from the run.
struct demo_result {
  demo_options options;
  std::string kernel;                ///< uname -r
  endpoint listen_endpoint;          ///< where the listener was
  std::uint32_t connected = 0;       ///< connect() completed within the window
  std::uint32_t requests_sent = 0;   ///< wrote the whole request, then closed
  std::uint32_t gave_up = 0;         ///< still connecting when the window ended: closed
  census final_census;               ///< the lab namespace at the end, sockets included
  listener_summary listener;         ///< the demo's listener, from final_census
  counter_map counters;              ///< deltas from before the first connect to the end
  unsigned long namespace_inode = 0; ///< the lab namespace's nsfs inode (gone after the run)
  double elapsed_ms = 0;
};

/// Runs the demo in a fresh anonymous namespace that is gone when this returns. Needs root or
/// an unprivileged user namespace (call lab::ensure_privileges() first). Throws lab_error.
demo_result run_accept_queue_demo(const demo_options& options = {});

/// A request of exactly `bytes` bytes: an HTTP GET padded with a header (raw bytes if `bytes`
/// is too small for one).
std::string make_demo_request(std::uint32_t bytes);

/// One expected outcome of the demo and what the run measured.
struct demo_check {
  std::string expectation; ///< e.g. "accept_queue == backlog + 1"
  std::string measured;    ///< e.g. "129 == 128 + 1"
  bool ok = false;
};

/// The demo's claims, checked against the result: the listener at backlog + 1, its
/// un-accepted CLOSE-WAIT children at request bytes + 1 with inode 0 and no other children,
/// TcpExtListenOverflows == TcpExtListenDrops > 0.
std::vector<demo_check> check_demo(const demo_result& r);

/// One paragraph explaining the result, with the run's own numbers.
std::string explain(const demo_result& r);

} // namespace backlog_lab::demo
