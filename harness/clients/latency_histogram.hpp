#pragma once
// Latency histograms for client connections. The bins are fine enough that the kernel's SYN
// retransmit steps (1 s, 3 s, 7 s classic; 1, 2, 3 s linear) appear as separate modes, and the
// bin index is computed arithmetically so that recording stays cheap on the hot path.
#include <array>
#include <boost/histogram/axis/option.hpp>
#include <boost/histogram/fwd.hpp>
#include <boost/histogram/histogram.hpp>
#include <boost/histogram/make_histogram.hpp>
#include <boost/histogram/storage_adaptor.hpp>
#include <chrono>
#include <cstdint>
#include <tuple>
#include <vector>

namespace backlog_lab::clients {

/// A Boost.Histogram axis over nanoseconds, uniform within segments: 10 us bins to 1 ms, 100 us
/// to 10 ms, 1 ms to 100 ms, 10 ms to 20 s, 1 s to 300 s, then one overflow bin.
class latency_axis {
public:
  /// One uniform stretch of the axis.
  struct segment {
    std::int64_t begin_ns;
    std::int64_t end_ns;
    std::int64_t width_ns;
  };
  static constexpr std::array<segment, 5> segments{{
      {0, 1'000'000, 10'000},
      {1'000'000, 10'000'000, 100'000},
      {10'000'000, 100'000'000, 1'000'000},
      {100'000'000, 20'000'000'000, 10'000'000},
      {20'000'000'000, 300'000'000'000, 1'000'000'000},
  }};

  /// Bins below the overflow bin.
  static constexpr int bin_count() noexcept {
    int n = 0;
    for (const auto& s : segments)
      n += static_cast<int>((s.end_ns - s.begin_ns) / s.width_ns);
    return n;
  }

  /// Only an overflow bin: latencies are never negative (negative input counts as 0).
  static constexpr unsigned options() noexcept {
    return boost::histogram::axis::option::overflow_t::value;
  }
  /// The bin of `ns`; bin_count() for values beyond the last edge.
  boost::histogram::axis::index_type index(std::int64_t ns) const noexcept {
    if (ns < 0) ns = 0;
    int first = 0;
    for (const auto& s : segments) {
      if (ns < s.end_ns) return first + static_cast<int>((ns - s.begin_ns) / s.width_ns);
      first += static_cast<int>((s.end_ns - s.begin_ns) / s.width_ns);
    }
    return first; // the overflow bin
  }
  /// Bins without the overflow bin (Boost.Histogram adds that one itself).
  boost::histogram::axis::index_type size() const noexcept { return bin_count(); }
  /// The lower edge of (real) bin index `i`, in nanoseconds; bin_count() gives 300 s.
  double value(double i) const noexcept;
  /// Every latency_axis has the same bins (Boost.Histogram compares axes when merging).
  bool operator==(const latency_axis&) const noexcept { return true; }
};

/// One non-empty bin, for reports: [lower, upper) and how many fell in it.
struct latency_bucket {
  std::chrono::nanoseconds lower{0};
  std::chrono::nanoseconds upper{0}; ///< nanoseconds::max() for the overflow bin
  std::uint64_t count = 0;
};

/// Count, exact min and max, and percentiles read from the bins.
struct latency_summary {
  std::uint64_t count = 0;
  std::chrono::nanoseconds min{0}, p50{0}, p90{0}, p99{0}, max{0};
};

/// A latency histogram with exact min and max.
class latency_histogram {
public:
  /// An empty histogram.
  latency_histogram();

  /// Adds one latency (negative values are recorded as 0).
  void record(std::chrono::nanoseconds latency) noexcept {
    std::int64_t ns = latency.count() < 0 ? 0 : latency.count();
    histogram_(ns);
    if (count_ == 0 || ns < min_ns_) min_ns_ = ns;
    if (ns > max_ns_) max_ns_ = ns;
    ++count_;
  }
  /// Adds every value of `other`.
  void merge(const latency_histogram& other);
  /// A histogram rebuilt from its non-empty bins (each bucket's lower edge picks its bin) and its
  /// exact min and max, as reports list them: merging such rebuilt histograms is exact.
  static latency_histogram from_buckets(const std::vector<latency_bucket>& buckets,
                                        std::chrono::nanoseconds min, std::chrono::nanoseconds max);

  /// Values recorded.
  std::uint64_t count() const noexcept { return count_; }
  /// The exact smallest value (0 when empty).
  std::chrono::nanoseconds min() const noexcept { return std::chrono::nanoseconds(min_ns_); }
  /// The exact largest value (0 when empty).
  std::chrono::nanoseconds max() const noexcept { return std::chrono::nanoseconds(max_ns_); }
  /// The q-quantile (q in [0, 1]): the upper edge of the bin holding the ceil(q * count)-th
  /// smallest value, clamped to [min, max], so it never understates; 0 when empty.
  std::chrono::nanoseconds percentile(double q) const noexcept;
  /// count, min, p50, p90, p99, max.
  latency_summary summary() const noexcept;
  /// The non-empty bins in ascending order.
  std::vector<latency_bucket> buckets() const;

private:
  using storage = boost::histogram::storage_adaptor<std::vector<std::uint64_t>>;
  boost::histogram::histogram<std::tuple<latency_axis>, storage> histogram_;
  std::uint64_t count_ = 0;
  std::int64_t min_ns_ = 0;
  std::int64_t max_ns_ = 0;
};

} // namespace backlog_lab::clients
