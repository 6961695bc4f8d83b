#include "harness/clients/arrival_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace backlog_lab::clients {

arrival_schedule::arrival_schedule(const scenario::client_group_spec& spec, std::uint64_t seed)
    : kind_(spec.arrival), rate_per_s_(spec.rate_per_s), checkers_(std::max(1u, spec.checkers)),
      interval_ns_(std::int64_t(spec.interval_ms) * 1'000'000),
      start_ns_(std::int64_t(spec.start_ms) * 1'000'000),
      stop_ns_(spec.stop_ms ? std::int64_t(*spec.stop_ms) * 1'000'000
                            : std::numeric_limits<std::int64_t>::max()),
      max_connections_(spec.max_connections), rng_(seed) {}

void arrival_schedule::begin(std::int64_t now_ns) {
  begin_ns_ = std::max(start_ns_, now_ns);
  seq_ = 0;
  next_ns_ = begin_ns_;
  if (kind_ == scenario::arrival::poisson) next_ns_ += exponential_ns();
}

std::uint16_t arrival_schedule::next_checker() const noexcept {
  return kind_ == scenario::arrival::heartbeat ? static_cast<std::uint16_t>(seq_ % checkers_) : 0;
}

std::int64_t arrival_schedule::exponential_ns() {
  // u in (0, 1], from 53 random bits: reproducible across standard libraries, unlike
  // std::exponential_distribution.
  double u = static_cast<double>((rng_() >> 11) + 1) * 0x1.0p-53;
  return std::llround(-std::log(u) / rate_per_s_ * 1e9);
}

void arrival_schedule::advance() {
  ++seq_;
  switch (kind_) {
  case scenario::arrival::constant:
    // From the sequence number, never by accumulation: the schedule cannot drift.
    next_ns_ = begin_ns_ + std::llround(static_cast<double>(seq_) * 1e9 / rate_per_s_);
    break;
  case scenario::arrival::poisson:
    next_ns_ += exponential_ns();
    break;
  case scenario::arrival::heartbeat:
    next_ns_ = begin_ns_ + std::int64_t(seq_ / checkers_) * interval_ns_;
    break;
  case scenario::arrival::closed:
    break;
  }
}

bool arrival_schedule::may_start(std::int64_t intended_ns, std::uint64_t started) const noexcept {
  return intended_ns < stop_ns_ && (max_connections_ == 0 || started < max_connections_);
}

} // namespace backlog_lab::clients
