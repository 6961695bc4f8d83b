#pragma once
// Reading a run_result in tests: a metric, an expectation, and what failed (for messages).
#include <gtest/gtest.h>
#include <string>

#include "harness/runner/run_result.hpp"

namespace backlog_lab::testing {

/// The metric `name` of `r`; a test failure and -1 when the run has no such metric.
inline double metric(const runner::run_result& r, const std::string& name) {
  auto it = r.metrics.find(name);
  EXPECT_NE(it, r.metrics.end()) << "no metric " << name;
  return it == r.metrics.end() ? -1 : it->second;
}

/// The first expectation of `r` on `metric`, or null.
inline const expect::expectation_result* find_expectation(const runner::run_result& r,
                                                          const std::string& metric) {
  for (const auto& e : r.expectations)
    if (e.spec.metric == metric) return &e;
  return nullptr;
}

/// Whether every expectation on `metric` held; a test failure when there is none.
inline bool expectation_passed(const runner::run_result& r, const std::string& metric) {
  bool found = false, passed = true;
  for (const auto& e : r.expectations)
    if (e.spec.metric == metric) {
      found = true;
      passed = passed && e.passed;
    }
  EXPECT_TRUE(found) << "no expectation on " << metric;
  return found && passed;
}

/// Every failed expectation with what was measured, and every program's state and stderr.
inline std::string failures(const runner::run_result& r) {
  std::string out;
  for (const auto& e : r.expectations)
    if (!e.passed)
      out += e.spec.metric + " " + std::string(scenario::name_of(e.spec.op)) + " measured " +
             (e.measured ? std::to_string(*e.measured) : "-") + " " + e.note + "\n";
  for (const auto& [name, p] : r.programs)
    out += name + ": " + p.state + " " + p.error + "\n" + p.stderr_tail + "\n";
  return out;
}

} // namespace backlog_lab::testing
