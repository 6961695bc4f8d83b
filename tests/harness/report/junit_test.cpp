// JUnit XML of runs: a testcase per expectation, and the stop testcase of an interrupted run.
#include <gtest/gtest.h>
#include <sstream>

#include "harness/report/report.hpp"
#include "harness/runner/run_result.hpp"

namespace backlog_lab::report {
namespace {

runner::run_result interrupted_run() {
  runner::run_result r;
  r.scenario.name = "demo <&>";
  r.interrupted = true;
  return r;
}

TEST(junit, an_interrupted_run_fails_its_run_completed_testcase) {
  auto r = interrupted_run();
  std::ostringstream out;
  write_junit(out, {&r});
  EXPECT_NE(out.str().find("name=\"run completed\""), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("failure message=\"interrupted\""), std::string::npos);
  EXPECT_NE(out.str().find("demo &lt;&amp;&gt;"), std::string::npos) << "names are escaped";
}

TEST(junit, the_stop_testcase_takes_the_callers_name_and_reason) {
  auto r = interrupted_run();
  std::ostringstream out;
  write_junit(out, {&r}, "suite", {"sweep completed", "cell 3: \"lab\" failed"});
  EXPECT_NE(out.str().find("name=\"sweep completed\""), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("message=\"cell 3: &quot;lab&quot; failed\""), std::string::npos);
  EXPECT_EQ(out.str().find("run completed"), std::string::npos);
}

} // namespace
} // namespace backlog_lab::report
