// The socket census on namespaces of about 1k, 10k and 100k sockets (socket_farm: 40% of the
// pairs half-closed, so their un-accepted children sit in CLOSE_WAIT with request bytes unread).
#include <fcntl.h>
#include <unistd.h>

#include <benchmark/benchmark.h>
#include <memory>
#include <string>
#include <vector>

#include "bench/support/socket_farm.hpp"
#include "harness/observer/census.hpp"

namespace backlog_lab::bench {
namespace {

/// One farm at a time (the 100k one holds ~50,000 client fds in its workers): kept between the
/// benchmarks of one size, replaced when the size changes. Sizes are registered outermost.
std::unique_ptr<socket_farm> current_farm;

/// The farm of about `sockets` sockets, or nullptr (and the benchmark skipped) if no lab.
const socket_farm* farm_of(benchmark::State& state, std::size_t sockets) {
  std::size_t pairs = sockets / 2;
  if (current_farm && current_farm->spec().pairs == pairs) return current_farm.get();
  current_farm.reset();
  try {
    farm_spec spec;
    spec.pairs = pairs;
    spec.close_wait = pairs * 2 / 5;
    spec.listeners = 50;
    spec.tcp_hash_entries = sockets >= 50'000 ? 65'536 : 4096;
    current_farm = std::make_unique<socket_farm>(socket_farm::build(spec));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
  return current_farm.get();
}

void label(benchmark::State& state, const socket_farm& farm) {
  state.counters["sockets"] = static_cast<double>(farm.counted().total);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * farm.counted().total));
}

/// A full census: every socket materialised, per-listener summaries (what `observe` prints).
void census_full(benchmark::State& state) {
  const socket_farm* farm = farm_of(state, static_cast<std::size_t>(state.range(0)));
  if (!farm) return;
  observer::census_reader reader(&farm->ns());
  observer::census c;
  for (auto _ : state) {
    reader.read(c);
    benchmark::DoNotOptimize(c.socket_count);
  }
  label(state, *farm);
}

/// Totals and per-listener summaries only (what the runner's sampler takes every tick).
void census_summary_only(benchmark::State& state) {
  const socket_farm* farm = farm_of(state, static_cast<std::size_t>(state.range(0)));
  if (!farm) return;
  observer::census_reader reader(&farm->ns());
  observer::census c;
  for (auto _ : state) {
    reader.read(c, {.summary_only = true});
    benchmark::DoNotOptimize(c.socket_count);
  }
  label(state, *farm);
}

/// The sock_diag dump alone: netlink round trips and decoding, no aggregation.
void census_dump(benchmark::State& state) {
  const socket_farm* farm = farm_of(state, static_cast<std::size_t>(state.range(0)));
  if (!farm) return;
  observer::census_reader reader(&farm->ns());
  for (auto _ : state) {
    std::size_t n = 0;
    reader.for_each([&](const observer::tcp_socket&) { ++n; });
    benchmark::DoNotOptimize(n);
  }
  label(state, *farm);
}

/// The per-port aggregation alone, over sockets dumped once.
void census_aggregate(benchmark::State& state) {
  const socket_farm* farm = farm_of(state, static_cast<std::size_t>(state.range(0)));
  if (!farm) return;
  std::vector<observer::tcp_socket> sockets;
  observer::census_reader reader(&farm->ns());
  reader.for_each([&](const observer::tcp_socket& s) { sockets.push_back(s); });
  observer::census_builder builder;
  observer::census c;
  for (auto _ : state) {
    builder.summarize(sockets, c);
    benchmark::DoNotOptimize(c.listeners.data());
  }
  label(state, *farm);
}

/// For scale: the kernel formatting /proc/net/tcp and tcp6 for the same namespace (read only,
/// not parsed).
void proc_net_tcp_read(benchmark::State& state) {
  const socket_farm* farm = farm_of(state, static_cast<std::size_t>(state.range(0)));
  if (!farm) return;
  int fds[2];
  {
    lab::netns_scope in(farm->ns());
    fds[0] = ::open("/proc/thread-self/net/tcp", O_RDONLY | O_CLOEXEC);
    fds[1] = ::open("/proc/thread-self/net/tcp6", O_RDONLY | O_CLOEXEC);
  }
  std::vector<char> buffer(1 << 20);
  for (auto _ : state) {
    std::size_t bytes = 0;
    for (int fd : fds) {
      ssize_t n;
      ::lseek(fd, 0, SEEK_SET);
      while ((n = ::read(fd, buffer.data(), buffer.size())) > 0)
        bytes += static_cast<std::size_t>(n);
    }
    benchmark::DoNotOptimize(bytes);
  }
  for (int fd : fds)
    ::close(fd);
  label(state, *farm);
}

/// Registers every census benchmark for one size before the next size, so each farm is built
/// once.
const bool registered = [] {
  for (std::int64_t sockets : {1'000, 10'000, 100'000}) {
    benchmark::RegisterBenchmark("BM_census_full", census_full)
        ->Arg(sockets)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_census_summary_only", census_summary_only)
        ->Arg(sockets)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_census_dump", census_dump)
        ->Arg(sockets)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_census_aggregate", census_aggregate)
        ->Arg(sockets)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_proc_net_tcp_read", proc_net_tcp_read)
        ->Arg(sockets)
        ->Unit(benchmark::kMicrosecond);
  }
  return true;
}();

} // namespace
} // namespace backlog_lab::bench
