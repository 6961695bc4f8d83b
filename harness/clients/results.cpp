#include "harness/clients/results.hpp"

namespace backlog_lab::clients {
namespace {

constexpr std::array<std::string_view, outcome_count> outcome_names{
    "answered", "syn_unanswered", "unanswered", "closed_early",
    "refused",  "reset",          "other",      "aborted",
};

double ms(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

void add_latency(std::map<std::string, double>& out, const std::string& prefix,
                 const latency_histogram& h) {
  auto s = h.summary();
  out[prefix + ".count"] = static_cast<double>(s.count);
  out[prefix + ".min"] = ms(s.min);
  out[prefix + ".p50"] = ms(s.p50);
  out[prefix + ".p90"] = ms(s.p90);
  out[prefix + ".p99"] = ms(s.p99);
  out[prefix + ".max"] = ms(s.max);
}

} // namespace

std::string_view to_string(outcome kind) noexcept {
  return outcome_names[static_cast<std::size_t>(kind)];
}

std::uint64_t outcome_counts::total() const noexcept {
  std::uint64_t n = 0;
  for (auto v : by_kind)
    n += v;
  return n;
}

std::map<std::string, double> metrics(const client_results& r) {
  std::map<std::string, double> out;
  out["started"] = static_cast<double>(r.started);
  out["connected"] = static_cast<double>(r.connected);
  std::uint64_t finished = r.counts.total();
  out["finished"] = static_cast<double>(finished);
  for (std::size_t i = 0; i < outcome_count; ++i) {
    std::string name(outcome_names[i]);
    out[name] = static_cast<double>(r.counts.by_kind[i]);
    out[name + "_share"] =
        finished == 0 ? 0.0
                      : static_cast<double>(r.counts.by_kind[i]) / static_cast<double>(finished);
  }
  add_latency(out, "connect_ms", r.connect_latency);
  add_latency(out, "response_ms", r.response_latency);
  out["peak_in_flight"] = static_cast<double>(r.peak_in_flight);
  out["max_start_lag_ms"] = ms(r.max_start_lag);
  for (std::size_t c = 1; c < r.status_classes.size(); ++c)
    out["http_" + std::to_string(c) + "xx"] = static_cast<double>(r.status_classes[c]);
  for (const auto& [err, n] : r.other_errors)
    out["errno." + std::to_string(err)] = static_cast<double>(n);
  return out;
}

} // namespace backlog_lab::clients
