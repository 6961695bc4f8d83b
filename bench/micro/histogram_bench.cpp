// Recording one latency into a client group's histogram (the per-connection hot path), and
// reading a summary out of a full one.
#include <benchmark/benchmark.h>
#include <chrono>
#include <cmath>
#include <random>
#include <vector>

#include "harness/clients/latency_histogram.hpp"

namespace backlog_lab::bench {
namespace {

/// Latencies spread log-uniformly over 10 us .. 10 s, so every axis segment is hit.
std::vector<std::chrono::nanoseconds> sample_latencies() {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exponent(4.0, 10.0); // 10^4 ns .. 10^10 ns
  std::vector<std::chrono::nanoseconds> v(4096);
  for (auto& x : v)
    x = std::chrono::nanoseconds(static_cast<std::int64_t>(std::pow(10.0, exponent(rng))));
  return v;
}

void BM_histogram_record(benchmark::State& state) {
  auto latencies = sample_latencies();
  clients::latency_histogram h;
  std::size_t i = 0;
  for (auto _ : state) {
    h.record(latencies[i]);
    i = (i + 1) & (latencies.size() - 1);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_histogram_record);

void BM_histogram_summary(benchmark::State& state) {
  auto latencies = sample_latencies();
  clients::latency_histogram h;
  for (auto x : latencies)
    h.record(x);
  for (auto _ : state) {
    auto s = h.summary();
    benchmark::DoNotOptimize(s.p99);
  }
}
BENCHMARK(BM_histogram_summary)->Unit(benchmark::kMicrosecond);

} // namespace
} // namespace backlog_lab::bench
