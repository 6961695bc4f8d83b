// The shipped 10,000-Service scenario, run for real (slow: two syncs of ~80,000 lines).
#include <gtest/gtest.h>

#include "harness/runner/runner.hpp"
#include "harness/scenario/reader.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::runner {
namespace {

TEST(runner_scale, ten_thousand_services_pass_and_report_each_sync) {
  BACKLOG_LAB_REQUIRE_LAB();
  run_result r = run_scenario(scenario::load_scenario("scale-10000-services"));
  std::string failed;
  for (const auto& e : r.expectations)
    if (!e.passed) failed += e.spec.metric + " " + e.note + "\n";
  EXPECT_TRUE(r.passed()) << failed;
  ASSERT_TRUE(r.proxy.has_value());
  ASSERT_EQ(r.proxy->rule_sync_ms.size(), 2u);
  EXPECT_EQ(r.metrics.at("proxy.rule_sync_ms.install"), r.proxy->rule_sync_ms.front());
  // The NodePort traffic went through both kinds of endpoints.
  EXPECT_GT(r.metrics.at("backend.web-0.accepted") + r.metrics.at("backend.web-1.accepted"), 0);
  EXPECT_GT(r.metrics.at("backend.node-b.accepted"), 0);
}

} // namespace
} // namespace backlog_lab::runner
