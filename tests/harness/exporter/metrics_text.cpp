#include "tests/harness/exporter/metrics_text.hpp"

#include <sstream>

#include "harness/lab/process.hpp"

namespace backlog_lab::testing {

std::optional<double> metric_value(const std::string& text, const std::string& name,
                                   const std::vector<std::string>& labels) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    char next = line[name.size()];
    if (next != '{' && next != ' ') continue;
    bool all = true;
    for (const auto& l : labels)
      all = all && line.find(l) != std::string::npos;
    if (!all) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

promtool_result promtool_check(const std::string& text) {
  auto r = lab::run_command(nullptr, {"promtool", "check", "metrics"}, text);
  return {r.exit_status, r.out + r.err};
}

} // namespace backlog_lab::testing
