// The runner on scenarios written here: input it refuses, and runs stopped early. The shipped
// scenarios are run by tests/scenarios/shipped_test.cpp.
#include <atomic>
#include <chrono>
#include <gtest/gtest.h>
#include <thread>

#include "harness/core/error.hpp"
#include "harness/runner/runner.hpp"
#include "harness/scenario/reader.hpp"
#include "tests/support/run_checks.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::runner {
namespace {

using testing::metric;

TEST(runner, a_sysctl_the_kernel_lacks_stops_the_run_and_names_it) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto s = scenario::parse_scenario(R"({"name": "x", "duration_ms": 100,
      "sysctls": {"node": {"net.ipv4.tcp_no_such_knob": 1}}})",
                                    "x.json");
  try {
    run_scenario(s);
    FAIL() << "expected lab_error";
  } catch (const lab_error& e) {
    EXPECT_NE(std::string(e.what()).find("net.ipv4.tcp_no_such_knob"), std::string::npos)
        << e.what();
  }
}

TEST(runner, a_stop_requested_before_the_run_starts_ends_it_cleanly) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto s = scenario::parse_scenario(R"({"name": "stopped", "duration_ms": 60000,
      "backends": [{"name": "p"}],
      "clients": [{"name": "c", "target": "203.0.113.10:8080", "rate_per_s": 20}]})",
                                    "stopped.json");
  std::atomic<bool> stop{true};
  run_result r = run_scenario(s, {.stop_requested = &stop});
  EXPECT_TRUE(r.interrupted);
  EXPECT_LT(r.run_ms, 5000);
}

TEST(runner, a_stop_request_ends_the_run_early_and_marks_it) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto s = scenario::parse_scenario(R"({"name": "long", "duration_ms": 60000,
      "backends": [{"name": "p"}],
      "clients": [{"name": "c", "target": "203.0.113.10:8080", "rate_per_s": 20}],
      "expectations": [{"metric": "clients.c.answered", "op": ">", "value": 0}]})",
                                    "long.json");
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stop = true;
  });
  run_result r = run_scenario(s, {.stop_requested = &stop});
  stopper.join();
  EXPECT_TRUE(r.interrupted);
  EXPECT_FALSE(r.passed());
  EXPECT_LT(r.run_ms, 30000);
  EXPECT_GT(metric(r, "clients.c.answered"), 0);
}

// A group on the node has no route out: a target outside the lab is refused (before any
// connection; the node namespace has no route out either), naming the group's "from", even
// with --allow-external.
TEST(runner, a_client_on_the_node_refuses_a_target_outside_the_lab) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto s = scenario::parse_scenario(
      R"({"name": "node-outside", "duration_ms": 500,
          "clients": [{"name": "c", "from": "node", "target": "100.64.0.2:80", "rate_per_s": 5}]})",
      "node-outside.json");
  try {
    run_scenario(s, {.allow_external = true});
    ADD_FAILURE() << "no error";
  } catch (const input_error& e) {
    EXPECT_NE(std::string(e.what()).find("/clients/0/from"), std::string::npos) << e.what();
  }
}

} // namespace
} // namespace backlog_lab::runner
