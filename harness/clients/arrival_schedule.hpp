#pragma once
// When a client group's connections are meant to start (docs/clients.md#arrivals): the intended
// start times of an open loop (constant or Poisson rate, heartbeat checkers), from which latency
// is measured, so a late start counts against the target and not as a lighter load.
#include <cstdint>
#include <random>

#include "harness/scenario/model.hpp"

namespace backlog_lab::clients {

/// The sequence of intended starts of one group, in ns from the run's start.
class arrival_schedule {
public:
  /// `spec` is read for arrival, rate_per_s, checkers, interval_ms, start_ms, stop_ms and
  /// max_connections; `seed` fixes the Poisson draws.
  arrival_schedule(const scenario::client_group_spec& spec, std::uint64_t seed);

  /// Restarts the sequence at `now_ns` (or the group's start_ms, if later).
  void begin(std::int64_t now_ns);
  /// The intended start of the next arrival.
  std::int64_t next_ns() const noexcept { return next_ns_; }
  /// The checker (heartbeat) or 0 (other arrivals) the next arrival belongs to.
  std::uint16_t next_checker() const noexcept;
  /// Moves on to the arrival after next.
  void advance();
  /// Whether a connection intended at `intended_ns` may still start, `started` having started.
  bool may_start(std::int64_t intended_ns, std::uint64_t started) const noexcept;

private:
  std::int64_t exponential_ns();

  scenario::arrival kind_;
  double rate_per_s_;
  std::uint32_t checkers_;
  std::int64_t interval_ns_;
  std::int64_t start_ns_;
  std::int64_t stop_ns_;
  std::uint64_t max_connections_;
  std::mt19937_64 rng_;
  std::int64_t begin_ns_ = 0;
  std::int64_t next_ns_ = 0;
  std::uint64_t seq_ = 0;
};

} // namespace backlog_lab::clients
