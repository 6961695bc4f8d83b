// The intended starts of each arrival kind, without sockets or clocks.
#include <cmath>
#include <gtest/gtest.h>
#include <vector>

#include "harness/clients/arrival_schedule.hpp"

namespace backlog_lab::clients {
namespace {

constexpr std::int64_t ms = 1'000'000;

scenario::client_group_spec spec_of(scenario::arrival kind) {
  scenario::client_group_spec s;
  s.arrival = kind;
  return s;
}

std::vector<std::int64_t> take(arrival_schedule& a, std::size_t n) {
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(a.next_ns());
    a.advance();
  }
  return out;
}

TEST(arrival_schedule, constant_rate_does_not_drift) {
  auto s = spec_of(scenario::arrival::constant);
  s.rate_per_s = 3; // 333.33... ms apart: accumulating rounded steps would drift
  arrival_schedule a(s, 1);
  a.begin(5 * ms);
  auto t = take(a, 3001);
  EXPECT_EQ(t[0], 5 * ms);
  EXPECT_EQ(t[1], 5 * ms + 333'333'333);
  EXPECT_EQ(t[3000], 5 * ms + 1000'000 * ms); // 1000 s later, to the nanosecond
}

TEST(arrival_schedule, starts_at_start_ms_or_now_whichever_is_later) {
  auto s = spec_of(scenario::arrival::constant);
  s.start_ms = 200;
  arrival_schedule a(s, 1);
  a.begin(50 * ms);
  EXPECT_EQ(a.next_ns(), 200 * ms);
  a.begin(300 * ms); // a start-clients event after start_ms
  EXPECT_EQ(a.next_ns(), 300 * ms);
}

TEST(arrival_schedule, poisson_gaps_have_the_rate_and_repeat_with_the_seed) {
  auto s = spec_of(scenario::arrival::poisson);
  s.rate_per_s = 100;
  arrival_schedule a(s, 42), b(s, 42), c(s, 43);
  a.begin(0);
  b.begin(0);
  c.begin(0);
  auto ta = take(a, 20000), tb = take(b, 20000), tc = take(c, 20000);
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
  EXPECT_GT(ta[0], 0); // the first arrival is one gap in, not at the start
  double mean_gap_ms = static_cast<double>(ta.back() - ta.front()) / (ta.size() - 1) / ms;
  EXPECT_NEAR(mean_gap_ms, 10.0, 0.3); // 20,000 gaps: the mean's spread is 10/sqrt(20000)=0.07
  // Exponential gaps: about e^-1 of them longer than the mean.
  std::size_t longer = 0;
  for (std::size_t i = 1; i < ta.size(); ++i)
    longer += ta[i] - ta[i - 1] > 10 * ms;
  EXPECT_NEAR(static_cast<double>(longer) / (ta.size() - 1), std::exp(-1.0), 0.02);
}

TEST(arrival_schedule, heartbeat_checkers_fire_together_each_interval) {
  auto s = spec_of(scenario::arrival::heartbeat);
  s.checkers = 3;
  s.interval_ms = 500;
  arrival_schedule a(s, 1);
  a.begin(0);
  std::vector<std::pair<std::int64_t, std::uint16_t>> seen;
  for (int i = 0; i < 7; ++i) {
    seen.emplace_back(a.next_ns(), a.next_checker());
    a.advance();
  }
  std::vector<std::pair<std::int64_t, std::uint16_t>> want = {
      {0, 0}, {0, 1}, {0, 2}, {500 * ms, 0}, {500 * ms, 1}, {500 * ms, 2}, {1000 * ms, 0}};
  EXPECT_EQ(seen, want);
}

TEST(arrival_schedule, stops_at_stop_ms_and_max_connections) {
  auto s = spec_of(scenario::arrival::constant);
  s.stop_ms = 1000;
  s.max_connections = 5;
  arrival_schedule a(s, 1);
  EXPECT_TRUE(a.may_start(999 * ms, 4));
  EXPECT_FALSE(a.may_start(1000 * ms, 4)); // stop_ms is exclusive
  EXPECT_FALSE(a.may_start(10 * ms, 5));
  s.stop_ms.reset();
  s.max_connections = 0;
  arrival_schedule unlimited(s, 1);
  EXPECT_TRUE(unlimited.may_start(std::int64_t(1) << 62, 1u << 30));
}

} // namespace
} // namespace backlog_lab::clients
