#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/scenario/overrides.hpp"
#include "tests/support/input_errors.hpp"

namespace backlog_lab::scenario {
namespace {

using json = nlohmann::json;

scenario_source text() {
  return {testing::small_userspace_scenario, "t.json"};
}

// apply_sets expecting an input_error; returns its message.
std::string error_of(const std::vector<std::string>& sets) {
  return testing::input_error_of([&] { apply_sets(text(), sets); }, ::testing::PrintToString(sets));
}

TEST(set_overrides, parses_sysctl_and_pointer_keys) {
  set_override a = parse_set("node:net.core.somaxconn=8,64,4096");
  EXPECT_EQ(a.role, "node");
  EXPECT_EQ(a.sysctl, "net.core.somaxconn");
  EXPECT_EQ(a.pointer, "/sysctls/node/net.core.somaxconn");
  EXPECT_EQ(a.values, (std::vector<json>{8, 64, 4096}));

  set_override b = parse_set("/proxy/dial_timeouts_ms=[250,500],[20,1000]");
  EXPECT_TRUE(b.role.empty());
  EXPECT_EQ(b.pointer, "/proxy/dial_timeouts_ms");
  ASSERT_EQ(b.values.size(), 2u) << "commas inside brackets belong to the value";
  EXPECT_EQ(b.values[1], json::parse("[20,1000]"));

  set_override c = parse_set("/proxy/mode=userspace,\"iptables\"");
  EXPECT_EQ(c.values, (std::vector<json>{"userspace", "iptables"})) << "bare words are strings";
  EXPECT_EQ(parse_set("/proxy/half_close=true,false").values, (std::vector<json>{true, false}));
  EXPECT_EQ(parse_set("/name=\"a,b\",c").values, (std::vector<json>{"a,b", "c"}))
      << "commas inside quotes belong to the value";
}

TEST(set_overrides, apply_sets_takes_one_value_per_key) {
  scenario s = apply_sets(text(), {"/proxy/backlog=64", "node:net.core.somaxconn=32"});
  EXPECT_EQ(s.proxy->backlog, 64);
  EXPECT_EQ(s.sysctls.at("node").at("net.core.somaxconn"), "32");
  std::string list = error_of({"/proxy/backlog=64,128"});
  EXPECT_NE(list.find("--set /proxy/backlog=64,128"), std::string::npos) << list;
  EXPECT_NE(list.find("backlog-lab sweep"), std::string::npos) << list;
  // Without --set the scenario is the file as written.
  EXPECT_EQ(apply_sets(text(), {}).proxy->backlog, -1);
}

TEST(set_overrides, errors_name_the_set_and_the_json_path) {
  struct bad {
    std::string set;
    std::vector<std::string> say; // parts the message must contain
  };
  const bad cases[] = {
      {"pods:net.core.no_such_key=1",
       {"--set pods:net.core.no_such_key=1", "/sysctls/pods/net.core.no_such_key",
        "/proc/sys/net/core/no_such_key does not exist"}},
      {"/proxy/backlg=5", {"--set /proxy/backlg=5", "/proxy/backlg", "unknown field 'backlg'"}},
      {"/clients/1/rate_per_s=5", {"--set /clients/1/rate_per_s=5", "nothing at /clients/1"}},
      {"/clients/0/rate_per_s=fast",
       {"--set /clients/0/rate_per_s=fast", "/clients/0/rate_per_s",
        "expected a number, got a string"}},
      {"/proxy/backlog/x=1", {"--set /proxy/backlog/x=1", "/proxy/backlog", "number"}},
  };
  for (const auto& c : cases) {
    std::string message = error_of({c.set});
    for (const auto& part : c.say)
      EXPECT_NE(message.find(part), std::string::npos)
          << "--set " << c.set << ": message \"" << message << "\" lacks \"" << part << "\"";
  }
  EXPECT_NE(error_of({"/proxy/backlog=1", "/proxy/backlog=2"}).find("set twice"),
            std::string::npos);
}

TEST(set_overrides, fields_that_depend_on_each_other_may_be_set_together) {
  // Mode and preset are checked as a pair: each --set is wrong alone, right together.
  scenario s = apply_sets(text(), {"/proxy/mode=nftables", "/proxy/preset=\"1.37\"",
                                   "/proxy/localhost_node_ports=true"});
  EXPECT_EQ(s.proxy->mode, proxy_mode::nftables);
  EXPECT_EQ(s.proxy->preset, proxy_preset::v1_37);
  EXPECT_TRUE(s.proxy->localhost_node_ports);
  // A value wrong on its own is blamed alone, not together with the others.
  std::string m = error_of({"/proxy/backlog=-5", "/duration_ms=2000"});
  EXPECT_NE(m.find("--set /proxy/backlog=-5: t.json: /proxy/backlog"), std::string::npos) << m;
  EXPECT_EQ(m.find("duration_ms"), std::string::npos) << m;
}

TEST(set_overrides, a_version_where_the_file_has_a_string_is_taken_as_written) {
  const char* iptables = R"({"name": "t", "duration_ms": 1000,
    "proxy": {"mode": "iptables", "preset": "1.24"}, "backends": [{"name": "a"}],
    "services": [{"name": "s1", "node_port": 30080, "endpoints": ["a"]}]})";
  EXPECT_EQ(apply_sets({iptables, "i.json"}, {"/proxy/preset=1.20"}).proxy->preset,
            proxy_preset::v1_20); // not 1.2
  // Where the file has a number, a number stays one.
  EXPECT_EQ(apply_sets({iptables, "i.json"}, {"/duration_ms=2000"}).duration_ms, 2000u);
}

TEST(set_overrides, value_text_shows_strings_bare_and_the_rest_as_json) {
  EXPECT_EQ(value_text("1.20"), "1.20");
  EXPECT_EQ(value_text(json(16)), "16");
  EXPECT_EQ(value_text(json::parse("[250,500]")), "[250,500]");
}

} // namespace
} // namespace backlog_lab::scenario
