// `backlog-lab check` parsed and executed in-process: no lab and no root, only the reader.
#include <fstream>
#include <gtest/gtest.h>

#include "tests/harness/cli/cli_runner.hpp"

namespace backlog_lab::cli {
namespace {

TEST(check_cmd, a_shipped_scenario_and_a_valid_file_are_ok) {
  std::string path = write_file("check-good.json", R"({"name": "g", "duration_ms": 100})");
  auto r = run({"check", "incident-2018-03", path});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "OK incident-2018-03\nOK " + path + "\n");
  EXPECT_EQ(r.err, "");
}

TEST(check_cmd, every_argument_is_checked_and_one_error_is_exit_2) {
  std::string bad = write_file("check-bad.json", R"({"name": "b", "duration_ms": 100,
    "clients": [{"name": "c", "target": "1.2.3.4:5", "rate_per_s": "fast"}]})");
  std::string good = write_file("check-good2.json", R"({"name": "g", "duration_ms": 100})");
  auto r = run({"check", bad, "no-such-scenario", good});
  EXPECT_EQ(r.code, 2);
  // The reader's own messages, naming file and JSON path; the later valid file is still read.
  EXPECT_NE(r.err.find("backlog-lab: " + bad + ": /clients/0/rate_per_s: expected a number"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("scenario 'no-such-scenario'"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "OK " + good + "\n");
}

TEST(check_cmd, reader_only_rules_are_enforced) {
  // Rules a JSON Schema cannot state: a duplicate key and a reference to a missing service.
  std::string dup = write_file("check-dup.json", R"({"name": "d", "duration_ms": 1,
    "duration_ms": 3600000})");
  auto r = run({"check", dup});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(dup + ": /duration_ms: each key once"), std::string::npos) << r.err;
  std::string ref = write_file("check-ref.json", R"({"name": "r", "duration_ms": 100,
    "clients": [{"name": "c", "target_service": "default/missing:80"}]})");
  r = run({"check", ref});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(ref + ": /clients/0/target_service"), std::string::npos) << r.err;
}

TEST(check_cmd, needs_a_scenario_and_refuses_a_directory_and_an_empty_name) {
  EXPECT_EQ(run({"check"}).code, 2);
  auto r = run({"check", ::testing::TempDir(), ""});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("not a directory"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("an empty name is not the default"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(check_cmd, a_control_character_in_an_argument_is_escaped) {
  // A name printed back must not forge a line of output.
  auto r = run({"check", "evil\nOK forged"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.find("\nOK forged"), std::string::npos) << r.err;
}

} // namespace
} // namespace backlog_lab::cli
