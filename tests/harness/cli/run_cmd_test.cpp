// `backlog-lab run` parsed and executed in-process: exit codes, error messages, outputs.
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/cli/app.hpp"
#include "tests/harness/cli/cli_runner.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::cli {
namespace {

// A one-second scenario: clients straight to one pod; `op value` decides the verdict.
std::string tiny_scenario(const std::string& op, double value) {
  return R"({"name": "tiny", "duration_ms": 800, "drain_ms": 500,
    "backends": [{"name": "p"}],
    "clients": [{"name": "c", "target": "203.0.113.10:8080", "rate_per_s": 20}],
    "expectations": [{"metric": "clients.c.answered", "op": ")" +
         op + R"(", "value": )" + std::to_string(value) +
         R"(, "description": "the pod answers"}]})";
}

TEST(cli, no_subcommand_or_unknown_flag_is_exit_2) {
  EXPECT_EQ(run({}).code, 2);
  auto r = run({"run", "--no-such-flag"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
  EXPECT_EQ(run({"--help"}).code, 0);
}

TEST(cli, unknown_scenario_name_lists_the_shipped_ones) {
  auto r = run({"run", "no-such-scenario"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no-such-scenario"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("incident-2018-03"), std::string::npos) << r.err;
}

TEST(cli, bad_scenario_file_names_file_and_json_path) {
  std::string path = write_file("bad.json", R"({"name": "b", "duration_ms": 100,
    "clients": [{"name": "c", "target": "1.2.3.4:5", "rate_per_s": "fast"}]})");
  auto r = run({"run", path});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(path + ": /clients/0/rate_per_s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("expected a number"), std::string::npos) << r.err;
}

TEST(cli, an_unwritable_report_path_fails_before_the_run) {
  for (const char* flag : {"--connections", "--json", "--junit", "--html"}) {
    auto r = run({"run", flag, "/nonexistent-dir/out"});
    EXPECT_EQ(r.code, 2) << flag;
    EXPECT_NE(r.err.find(std::string(flag) + " /nonexistent-dir/out"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("Expectations"), std::string::npos) << flag << ": the run went ahead";
  }
}

TEST(cli, list_shows_the_default_scenario) {
  auto r = run({"run", "--list"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("incident-2018-03 (default)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("userspace-frozen-backends"), std::string::npos);
}

TEST(cli, verdict_is_the_exit_code_and_reports_are_written) {
  BACKLOG_LAB_REQUIRE_LAB();
  std::string json_path = (scratch_dir() / "report.json").string();
  std::string junit_path = (scratch_dir() / "report.xml").string();
  auto pass = run({"run", write_file("pass.json", tiny_scenario(">", 5)), "--json", json_path,
                   "--junit", junit_path, "--seed", "42"});
  EXPECT_EQ(pass.code, 0) << pass.out << pass.err;
  EXPECT_NE(pass.out.find("PASS: tiny, 1/1"), std::string::npos) << pass.out;
  auto report = nlohmann::json::parse(read_file(json_path));
  EXPECT_EQ(report["seed"], 42);
  EXPECT_EQ(report["passed"], true);
  EXPECT_GT(report["metrics"]["clients.c.answered"].get<double>(), 5);
  // Where the wall time went, in --json and in the terminal report.
  ASSERT_EQ(report["wall"].size(), 9u) << report["wall"];
  EXPECT_EQ(report["wall"][0]["phase"], "lab");
  EXPECT_EQ(report["wall"][5]["phase"], "timeline");
  EXPECT_GE(report["wall"][5]["ms"].get<double>(), report["scenario"]["duration_ms"].get<double>());
  EXPECT_NE(pass.out.find("wall time "), std::string::npos) << pass.out;
  EXPECT_NE(pass.out.find(" timeline "), std::string::npos) << pass.out;
  EXPECT_NE(read_file(junit_path).find("<testcase classname=\"tiny\""), std::string::npos);

  auto fail =
      run({"run", write_file("fail.json", tiny_scenario("<", 1)), "--junit", junit_path, "-q"});
  EXPECT_EQ(fail.code, 1) << fail.out << fail.err;
  EXPECT_NE(fail.out.find("FAIL  clients.c.answered < 1"), std::string::npos) << fail.out;
  std::string xml = read_file(junit_path);
  EXPECT_NE(xml.find("<failure message=\"measured"), std::string::npos) << xml;
}

} // namespace
} // namespace backlog_lab::cli
