// MIB counters: one snapshot of a namespace (/proc/net/netstat + /proc/net/snmp, two preads and
// a parse into ~300 named counters) and the delta of two snapshots.
#include <benchmark/benchmark.h>
#include <optional>

#include "harness/lab/netns.hpp"
#include "harness/observer/counters.hpp"

namespace backlog_lab::bench {
namespace {

void BM_counter_snapshot(benchmark::State& state) {
  std::optional<lab::netns> ns;
  try {
    ns = lab::netns::create("bench-counters");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  observer::counter_reader reader(&*ns);
  observer::counter_snapshot snapshot;
  for (auto _ : state) {
    reader.read(snapshot);
    benchmark::DoNotOptimize(snapshot.values.size());
  }
  state.counters["counters"] = static_cast<double>(snapshot.values.size());
}
BENCHMARK(BM_counter_snapshot)->Unit(benchmark::kMicrosecond);

void BM_counter_delta(benchmark::State& state) {
  // The host's counters: a delta needs no namespace, only two real snapshots.
  observer::counter_reader reader;
  observer::counter_snapshot before = reader.read();
  observer::counter_snapshot after = reader.read();
  for (auto _ : state) {
    auto d = observer::delta(before, after);
    benchmark::DoNotOptimize(d.size());
  }
  state.counters["counters"] = static_cast<double>(after.values.size());
}
BENCHMARK(BM_counter_delta)->Unit(benchmark::kMicrosecond);

} // namespace
} // namespace backlog_lab::bench
