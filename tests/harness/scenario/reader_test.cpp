#include <algorithm>
#include <fstream>
#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/scenario/reader.hpp"

namespace backlog_lab::scenario {
namespace {

const char* minimal = R"({
  "name": "t", "duration_ms": 1000,
  "proxy": {"mode": "userspace"},
  "backends": [{"name": "pod-a"}],
  "services": [{"name": "default/web:http", "node_port": 30080, "endpoints": ["pod-a"]}],
  "clients": [{"name": "load", "target_service": "default/web:http", "rate_per_s": 10}]
})";

// Parses `text` expecting an input_error; returns its message.
std::string error_of(const std::string& text) {
  try {
    parse_scenario(text, "bad.json");
  } catch (const input_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << text;
  return {};
}

std::string with(const std::string& from, const std::string& to) {
  std::string s = minimal;
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

TEST(reader, reads_a_minimal_scenario_with_defaults) {
  scenario s = parse_scenario(minimal, "min.json");
  EXPECT_EQ(s.name, "t");
  EXPECT_EQ(s.duration_ms, 1000u);
  ASSERT_TRUE(s.proxy.has_value());
  EXPECT_EQ(s.proxy->mode, "userspace");
  EXPECT_EQ(s.proxy->dial_timeouts_ms, (std::vector<uint32_t>{250, 500, 1000, 2000}));
  EXPECT_EQ(s.backends.at(0).kind, "http");
  EXPECT_EQ(s.clients.at(0).rate_per_s, 10);
  EXPECT_EQ(s.clients.at(0).request_bytes.min, 100u);
}

TEST(reader, wrong_type_names_file_path_and_expectation) {
  auto msg = error_of(with("\"rate_per_s\": 10", "\"rate_per_s\": \"ten\""));
  EXPECT_NE(msg.find("bad.json: /clients/0/rate_per_s"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected a number, got a string"), std::string::npos) << msg;
}

TEST(reader, a_number_too_large_for_a_double_is_an_input_error) {
  // Found by fuzzing (tests/fuzz/regressions/scenario_reader): it escaped as json out_of_range.
  auto msg = error_of(with("\"rate_per_s\": 10", "\"rate_per_s\": 1e888"));
  EXPECT_NE(msg.find("bad.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("number overflow"), std::string::npos) << msg;
}

TEST(reader, unknown_field_is_an_error) {
  auto msg = error_of(with("\"rate_per_s\": 10", "\"rate_per_sec\": 10"));
  EXPECT_NE(msg.find("/clients/0/rate_per_sec"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown field"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rate_per_s"), std::string::npos) << msg; // lists what is allowed
}

TEST(reader, out_of_range_and_enums) {
  EXPECT_NE(error_of(with("30080", "70000")).find("/services/0/node_port"), std::string::npos);
  auto msg = error_of(with("\"userspace\"", "\"ipvs\""));
  EXPECT_NE(msg.find("/proxy/mode"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"iptables\""), std::string::npos) << msg;
  EXPECT_NE(error_of(with("\"duration_ms\": 1000", "\"duration_ms\": 1.5")).find("/duration_ms"),
            std::string::npos);
}

TEST(reader, missing_required_field) {
  auto msg = error_of(with("\"name\": \"t\", ", ""));
  EXPECT_NE(msg.find("bad.json: /name"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST(reader, dangling_references_are_errors) {
  auto msg = error_of(with("\"endpoints\": [\"pod-a\"]", "\"endpoints\": [\"pod-b\"]"));
  EXPECT_NE(msg.find("/services/0/endpoints/0"), std::string::npos) << msg;
  msg = error_of(with("\"target_service\": \"default/web:http\"", "\"target_service\": \"nope\""));
  EXPECT_NE(msg.find("/clients/0/target_service"), std::string::npos) << msg;
  msg = error_of(with("\"clients\"", "\"timeline\": [{\"at_ms\": 10, \"action\": \"freeze\", "
                                     "\"target\": \"pod-z\"}], \"clients\""));
  EXPECT_NE(msg.find("/timeline/0/target"), std::string::npos) << msg;
  msg = error_of(with("\"clients\"", "\"timeline\": [{\"at_ms\": 5000, \"action\": \"freeze\", "
                                     "\"target\": \"pod-a\"}], \"clients\""));
  EXPECT_NE(msg.find("/timeline/0/at_ms"), std::string::npos) << msg;
}

TEST(reader, syntax_error_gives_line_and_column) {
  auto msg = error_of("{\n  \"name\": \"t\",\n  \"duration_ms\": ,\n}");
  EXPECT_NE(msg.find("bad.json:3:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("valid JSON"), std::string::npos) << msg;
  EXPECT_NE(error_of("[]").find("expected an object"), std::string::npos);
  EXPECT_NE(error_of("").find("valid JSON"), std::string::npos);
}

TEST(reader, expectation_needs_exactly_one_of_value_and_other) {
  auto msg = error_of(with("\"clients\"", "\"expectations\": [{\"metric\": \"a\"}], \"clients\""));
  EXPECT_NE(msg.find("/expectations/0"), std::string::npos) << msg;
  scenario s = parse_scenario(
      with("\"clients\"", "\"expectations\": [{\"metric\": \"a\", \"op\": \">\", \"value\": 0}, "
                          "{\"metric\": \"a\", \"other\": \"b\"}], \"clients\""),
      "x");
  ASSERT_EQ(s.expectations.size(), 2u);
  EXPECT_EQ(*s.expectations[1].other, "b");
}

TEST(reader, sysctls_by_role) {
  scenario s = parse_scenario(
      with("\"proxy\"", "\"sysctls\": {\"node\": {\"net.core.somaxconn\": 128, "
                        "\"net.ipv4.ip_local_port_range\": \"32768 60999\"}}, \"proxy\""),
      "x");
  EXPECT_EQ(s.sysctls.at("node").at("net.core.somaxconn"), "128");
  auto msg = error_of(with("\"proxy\"", "\"sysctls\": {\"nodes\": {}}, \"proxy\""));
  EXPECT_NE(msg.find("/sysctls/nodes"), std::string::npos) << msg;
  msg = error_of(with("\"proxy\"", "\"sysctls\": {\"node\": {\"kernel.pid_max\": 1}}, \"proxy\""));
  EXPECT_NE(msg.find("/sysctls/node/kernel.pid_max"), std::string::npos) << msg;
}

TEST(reader, loads_files_and_rejects_unknown_names) {
  std::string path = ::testing::TempDir() + "/scn.json";
  std::ofstream(path) << minimal;
  EXPECT_EQ(load_scenario(path).source, path);
  try {
    load_scenario("no-such-scenario");
    FAIL();
  } catch (const input_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-scenario"), std::string::npos);
  }
  EXPECT_THROW(load_scenario("/nonexistent/x.json"), input_error);
}

TEST(reader, every_shipped_scenario_parses) {
  auto names = builtin_scenario_names();
  EXPECT_NE(std::find(names.begin(), names.end(), default_scenario), names.end());
  for (const auto& name : builtin_scenario_names()) {
    SCOPED_TRACE(name);
    scenario s = load_scenario(name);
    EXPECT_EQ(s.source, "builtin:" + name);
    EXPECT_FALSE(s.expectations.empty()) << "a shipped scenario asserts something";
  }
}

} // namespace
} // namespace backlog_lab::scenario
