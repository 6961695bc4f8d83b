#include <gtest/gtest.h>

#include "harness/clients/latency_histogram.hpp"

namespace backlog_lab::clients {
namespace {

using namespace std::chrono_literals;

TEST(latency_axis, bins_follow_the_segments) {
  latency_axis axis;
  EXPECT_EQ(latency_axis::bin_count(), 100 + 90 + 90 + 1990 + 280);
  EXPECT_EQ(axis.index(-5), 0);
  EXPECT_EQ(axis.index(0), 0);
  EXPECT_EQ(axis.index(9'999), 0);
  EXPECT_EQ(axis.index(10'000), 1);
  EXPECT_EQ(axis.index(999'999), 99);
  EXPECT_EQ(axis.index(1'000'000), 100);
  EXPECT_EQ(axis.index(10'000'000), 190);
  EXPECT_EQ(axis.index(100'000'000), 280);
  EXPECT_EQ(axis.index(20'000'000'000), 2270);
  EXPECT_EQ(axis.index(299'999'999'999), 2549);
  EXPECT_EQ(axis.index(300'000'000'000), 2550); // overflow
  for (int i = 0; i <= latency_axis::bin_count(); ++i)
    EXPECT_EQ(axis.index(static_cast<std::int64_t>(axis.value(i))), i) << i;
}

// What `backlog-lab merge` does with run reports: histograms rebuilt from their listed buckets and
// exact extremes, merged, give what merging the originals gives (percentiles included).
TEST(latency_histogram, rebuilt_from_buckets_merges_exactly) {
  latency_histogram a, b, both;
  using us = std::chrono::microseconds;
  for (us v : {us(130), us(2ms), us(1013ms), us(1019ms), us(3041ms), us(350s)}) {
    a.record(v);
    both.record(v);
  }
  for (us v : {us(90), us(95), us(1015ms), us(7061ms)}) {
    b.record(v);
    both.record(v);
  }
  auto rebuilt = [](const latency_histogram& h) {
    return latency_histogram::from_buckets(h.buckets(), h.min(), h.max());
  };
  latency_histogram merged = rebuilt(a);
  merged.merge(rebuilt(b));
  merged.merge(rebuilt(latency_histogram{})); // an empty report changes nothing
  EXPECT_EQ(merged.count(), 10u);
  EXPECT_EQ(merged.min(), 90us);
  EXPECT_EQ(merged.max(), 350s);
  auto x = merged.buckets(), y = both.buckets();
  ASSERT_EQ(x.size(), y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(x[i].lower, y[i].lower);
    EXPECT_EQ(x[i].count, y[i].count);
  }
  for (double q : {0.1, 0.5, 0.9, 0.99, 1.0})
    EXPECT_EQ(merged.percentile(q), both.percentile(q)) << q;
  // Averaging the two p50s would say ~1 s; the population's p50 is in the 1013 ms bin.
  EXPECT_EQ(merged.percentile(0.5), 1020ms);
}

TEST(latency_histogram, syn_retransmit_steps_are_separate_modes) {
  latency_histogram h;
  // Classic 1 s, 3 s, 7 s and linear 1, 2, 3 s, each with a few ms of timer slack.
  for (auto d : {1003ms, 1004ms, 2002ms, 3001ms, 3006ms, 7004ms})
    h.record(d);
  auto buckets = h.buckets();
  ASSERT_EQ(buckets.size(), 4u);
  EXPECT_EQ(buckets[0].lower, 1000ms);
  EXPECT_EQ(buckets[0].upper, 1010ms);
  EXPECT_EQ(buckets[0].count, 2u);
  EXPECT_EQ(buckets[1].lower, 2000ms);
  EXPECT_EQ(buckets[2].lower, 3000ms);
  EXPECT_EQ(buckets[2].count, 2u);
  EXPECT_EQ(buckets[3].lower, 7000ms);
  EXPECT_EQ(h.min(), 1003ms);
  EXPECT_EQ(h.max(), 7004ms);
}

TEST(latency_histogram, percentiles_are_bin_upper_edges_clamped_to_min_and_max) {
  latency_histogram h;
  EXPECT_EQ(h.percentile(0.5), 0ns);
  for (int i = 1; i <= 100; ++i)
    h.record(std::chrono::milliseconds(i * 10) + 1ms);
  // Values 11, 21, ..., 1001 ms. The 50th is 501 ms, in bin [500, 510).
  EXPECT_EQ(h.percentile(0.50), 510ms);
  EXPECT_EQ(h.percentile(0.90), 910ms);
  EXPECT_EQ(h.percentile(0.99), 1000ms);
  EXPECT_EQ(h.percentile(1.0), 1001ms); // clamped to the exact max
  EXPECT_EQ(h.percentile(0.0), 12ms);   // the smallest value's bin, [11, 12) ms (1 ms bins)
  auto s = h.summary();
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.min, 11ms);
  EXPECT_EQ(s.max, 1001ms);
  EXPECT_EQ(s.p50, 510ms);
}

TEST(latency_histogram, overflow_and_merge) {
  latency_histogram a, b;
  a.record(400s);
  b.record(5ms);
  b.record(-3ms); // clock oddities count as 0
  a.merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.min(), 0ns);
  EXPECT_EQ(a.max(), 400s);
  EXPECT_EQ(a.percentile(1.0), 400s);
  auto buckets = a.buckets();
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets.back().lower, 300s);
  EXPECT_EQ(buckets.back().upper, std::chrono::nanoseconds::max());
}

} // namespace
} // namespace backlog_lab::clients
