#include "harness/clients/latency_histogram.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace backlog_lab::clients {

double latency_axis::value(double i) const noexcept {
  double first = 0;
  for (const auto& s : segments) {
    double bins = static_cast<double>((s.end_ns - s.begin_ns) / s.width_ns);
    if (i < first + bins) return static_cast<double>(s.begin_ns) + (i - first) * s.width_ns;
    first += bins;
  }
  // At or past the overflow bin's lower edge; its upper edge is infinite.
  return i <= first ? static_cast<double>(segments.back().end_ns)
                    : std::numeric_limits<double>::infinity();
}

latency_histogram::latency_histogram()
    : histogram_(boost::histogram::make_histogram_with(storage(), latency_axis{})) {}

void latency_histogram::merge(const latency_histogram& other) {
  if (other.count_ == 0) return;
  histogram_ += other.histogram_;
  min_ns_ = count_ == 0 ? other.min_ns_ : std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
  count_ += other.count_;
}

latency_histogram latency_histogram::from_buckets(const std::vector<latency_bucket>& buckets,
                                                  std::chrono::nanoseconds min,
                                                  std::chrono::nanoseconds max) {
  latency_histogram h;
  for (const auto& b : buckets) {
    if (b.count == 0) continue;
    h.histogram_.at(h.histogram_.axis().index(b.lower.count())) += b.count;
    h.count_ += b.count;
  }
  if (h.count_ > 0) {
    h.min_ns_ = min.count();
    h.max_ns_ = max.count();
  }
  return h;
}

std::chrono::nanoseconds latency_histogram::percentile(double q) const noexcept {
  if (count_ == 0) return std::chrono::nanoseconds(0);
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  const auto& axis = histogram_.axis();
  const int bins = latency_axis::bin_count();
  std::uint64_t seen = 0;
  for (int i = 0; i <= bins; ++i) {
    seen += histogram_.at(i);
    if (seen >= rank) {
      if (i == bins) return max(); // overflow bin: the exact max is the only bound we have
      auto upper = static_cast<std::int64_t>(axis.value(i + 1));
      return std::chrono::nanoseconds(std::clamp(upper, min_ns_, max_ns_));
    }
  }
  return max();
}

latency_summary latency_histogram::summary() const noexcept {
  latency_summary s;
  s.count = count_;
  s.min = min();
  s.p50 = percentile(0.50);
  s.p90 = percentile(0.90);
  s.p99 = percentile(0.99);
  s.max = max();
  return s;
}

std::vector<latency_bucket> latency_histogram::buckets() const {
  std::vector<latency_bucket> out;
  const auto& axis = histogram_.axis();
  const int bins = latency_axis::bin_count();
  for (int i = 0; i <= bins; ++i) {
    std::uint64_t n = histogram_.at(i);
    if (n == 0) continue;
    latency_bucket b;
    b.lower = std::chrono::nanoseconds(static_cast<std::int64_t>(axis.value(i)));
    b.upper = i == bins ? std::chrono::nanoseconds::max()
                        : std::chrono::nanoseconds(static_cast<std::int64_t>(axis.value(i + 1)));
    b.count = n;
    out.push_back(b);
  }
  return out;
}

} // namespace backlog_lab::clients
