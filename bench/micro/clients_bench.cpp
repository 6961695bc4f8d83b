// One client connection cycle (socket, connect, HTTP request, response, close) through a client
// group, against an http backend on the same single-threaded io_context over loopback: the
// time includes the backend's half of the work.
#include <benchmark/benchmark.h>
#include <chrono>
#include <optional>

#include "backends/backend.hpp"
#include "harness/clients/client_group.hpp"
#include "harness/clients/http_message.hpp"
#include "harness/lab/netns.hpp"
#include "harness/lab/sysctl.hpp"

namespace backlog_lab::bench {
namespace {

void BM_client_connection_cycle(benchmark::State& state) {
  std::optional<lab::netns> ns;
  try {
    ns = lab::netns::create("bench-clients");
    // Many short connections on one 4-tuple space: wide port range, TIME_WAIT reuse.
    lab::write_sysctl(*ns, "net.ipv4.ip_local_port_range", "1024 65535");
    lab::write_sysctl(*ns, "net.ipv4.tcp_tw_reuse", "1");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  net::io_context io{1};
  scenario::backend_spec bspec;
  bspec.name = "bench-http";
  bspec.port = 0;
  bspec.backlog = 1024;
  backends::backend backend(io, *ns, bspec, net::ip::make_address("127.0.0.1"));
  backend.start();

  scenario::client_group_spec spec;
  spec.name = "cycle";
  spec.arrival = scenario::arrival::closed;
  spec.concurrency = 1;
  spec.request_bytes = {clients::request_source::min_http_bytes,
                        clients::request_source::min_http_bytes};
  spec.connect_timeout_ms = 2000;
  spec.response_timeout_ms = 2000;
  clients::client_group group(io, *ns, spec, backend.local_endpoint(), {}, 1,
                              clients::client_group::clock::now());
  group.start();
  // Warm up: slots, socket pool and coroutine frames exist before timing.
  while (group.results().counts.total() < 100)
    io.run_one();
  for (auto _ : state) {
    auto done = group.results().counts.total();
    while (group.results().counts.total() == done)
      io.run_one();
  }
  group.abort();
  const auto& r = group.results();
  if (r.counts[clients::outcome::answered] + 1 < r.counts.total())
    state.SkipWithError("connections failed: not every cycle was answered");
  state.counters["answered"] = static_cast<double>(r.counts[clients::outcome::answered]);
  state.SetItemsProcessed(state.iterations());
  backend.kill();
  io.run_for(std::chrono::milliseconds(10));
}
BENCHMARK(BM_client_connection_cycle)->Unit(benchmark::kMicrosecond);

} // namespace
} // namespace backlog_lab::bench
