#pragma once
// Expectations: comparisons on the named metrics of a run (docs/metrics.md).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/scenario/model.hpp"

namespace backlog_lab::expect {

/// Named measurements of a run, e.g. "counter.node.TcpExtListenOverflows" -> 56.
using metric_map = std::map<std::string, double>;

/// The verdict on one expectation, with what was measured.
struct expectation_result {
  scenario::expectation_spec spec;
  std::optional<double> measured; ///< value of spec.metric (absent: unknown metric)
  std::optional<double> expected; ///< spec.value, or the value of spec.other
  bool passed = false;
  std::string note; ///< why it could not be evaluated, if so
};

/// Looks up a metric. Besides plain names, "max:", "min:", "sum:" and "count:" prefixes
/// aggregate over every metric matching a glob ('*' matches within one dotted part or more),
/// e.g. "max:listener.node.*.close_wait_unaccepted". Empty if nothing matches.
std::optional<double> lookup(const metric_map& metrics, const std::string& name);

/// Applies `op` to a and b; ==, !=, <= and >= allow 1e-9 slack.
bool compare(double a, scenario::compare_op op, double b);

/// Evaluates every expectation; an unknown metric fails with a note naming close matches.
std::vector<expectation_result> evaluate(const std::vector<scenario::expectation_spec>& specs,
                                         const metric_map& metrics);

/// True when every result passed.
bool all_passed(const std::vector<expectation_result>& results);

} // namespace backlog_lab::expect
