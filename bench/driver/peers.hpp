#pragma once
// The peers from Debian packages, set up inside a lab namespace: nginx (one worker) as the
// backend, haproxy (tcp mode, one thread) as the reference proxy, wrk as the reference load
// generator; and backlog-lab's own clients driven the same way.
#include <cstdint>
#include <string>

#include "bench/driver/measure.hpp"
#include "harness/clients/results.hpp"
#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/scenario/model.hpp"

namespace backlog_lab::bench {

/// nginx 1.22 in the foreground without a master process (so PR_SET_PDEATHSIG reaches the one
/// process that serves), access log off, `return 200` with a short body, on 127.0.0.1:`port`.
peer_process start_nginx(const lab::netns& ns, const std::string& dir, std::uint16_t port, int cpu);

/// haproxy in the foreground, `mode tcp`, `nbthread 1`, 127.0.0.1:`port` -> 127.0.0.1:`backend`.
peer_process start_haproxy(const lab::netns& ns, const std::string& dir, std::uint16_t port,
                           std::uint16_t backend, int cpu);

/// proxy_sim's userspace proxier in a forked child (its own single-threaded io_context), one
/// Service on NodePort `port` ([::]:port, dual stack) with the one endpoint 127.0.0.1:`backend`.
peer_process start_proxy_sim(const lab::netns& ns, std::uint16_t port, std::uint16_t backend,
                             int cpu);

/// What wrk printed.
struct wrk_result {
  double requests_per_s = 0; ///< "Requests/sec:"
  std::uint64_t requests = 0;
  std::uint64_t socket_errors = 0; ///< connect + read + write + timeout
  std::uint64_t non_2xx = 0;
  double p99_ms = 0; ///< from --latency
  double cpu_ms = 0; ///< wrk's own user + system time
  std::string raw;
};

/// `wrk -t1 -c<connections> -d<seconds>s --latency -H 'Connection: close'` against
/// http://127.0.0.1:`port`/ inside `ns`, pinned to `cpu`. Throws lab_error on no result.
wrk_result run_wrk(const lab::netns& ns, std::uint16_t port, int seconds, int cpu,
                   int connections = 50);

/// What one run of backlog-lab's clients achieved.
struct clients_run {
  double seconds = 0;         ///< measured window
  std::uint64_t started = 0;  ///< connections started within the window
  std::uint64_t answered = 0; ///< answered within the window (closed loop) or in all (open loop)
  std::uint64_t finished = 0; ///< every finished connection
  double cpu_ms = 0;          ///< the client thread's CPU time over the window
  double p50_ms = 0, p99_ms = 0, max_start_lag_ms = 0; ///< response latency from intended start
};

/// Closed loop, like wrk: `concurrency` connections in flight on one thread pinned to `cpu`,
/// each a new connection with one HTTP request (`Connection: close`); `seconds` long.
clients_run run_closed_loop(const lab::netns& ns, std::uint16_t port, std::uint32_t concurrency,
                            double seconds, int cpu);

/// Open loop, like wrk2: `rate` new connections per second (constant arrivals) for `seconds`,
/// latency from each one's intended start; waits for the stragglers (bounded).
clients_run run_open_loop(const lab::netns& ns, std::uint16_t port, double rate, double seconds,
                          int cpu);

} // namespace backlog_lab::bench
