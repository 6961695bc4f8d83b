#pragma once
// Reading Prometheus text back in the exporter's tests, and promtool as the oracle.
#include <optional>
#include <string>
#include <vector>

namespace backlog_lab::testing {

/// The value of the first sample of `name` whose labels include every `k="v"` in `labels`.
std::optional<double> metric_value(const std::string& text, const std::string& name,
                                   const std::vector<std::string>& labels = {});

/// Runs `promtool check metrics` on `text`; returns its exit status and output.
struct promtool_result {
  int status = -1;
  std::string output;
};
promtool_result promtool_check(const std::string& text);

} // namespace backlog_lab::testing
