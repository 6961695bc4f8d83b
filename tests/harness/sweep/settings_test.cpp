#include <cstdint>
#include <gtest/gtest.h>
#include <set>

#include "harness/core/error.hpp"
#include "harness/sweep/settings.hpp"
#include "tests/support/input_errors.hpp"

namespace backlog_lab::sweep {
namespace {

using json = nlohmann::json;

scenario_text text() {
  return {testing::small_userspace_scenario, "t.json"};
}

// make_plan expecting an input_error; returns its message.
std::string error_of(const std::vector<std::string>& sets) {
  return testing::input_error_of([&] { make_plan(text(), sets); }, ::testing::PrintToString(sets));
}

TEST(sweep_settings, the_cells_are_the_cartesian_product_last_axis_fastest) {
  plan p = make_plan(text(), {"node:net.core.somaxconn=8,64", "/clients/0/rate_per_s=5,10,20"});
  ASSERT_EQ(p.cells.size(), 6u);
  std::set<std::pair<int, double>> seen;
  for (size_t i = 0; i < p.cells.size(); ++i) {
    const cell& c = p.cells[i];
    EXPECT_EQ(c.index, i);
    std::string somaxconn = c.scenario.sysctls.at("node").at("net.core.somaxconn");
    double rate = c.scenario.clients.at(0).rate_per_s;
    EXPECT_EQ(somaxconn, c.settings[0].second.dump());
    EXPECT_EQ(rate, c.settings[1].second.get<double>());
    seen.insert({std::stoi(somaxconn), rate});
  }
  EXPECT_EQ(seen.size(), 6u) << "every combination once";
  EXPECT_EQ(p.cells[0].label(), "node:net.core.somaxconn=8 /clients/0/rate_per_s=5");
  EXPECT_EQ(p.cells[1].label(), "node:net.core.somaxconn=8 /clients/0/rate_per_s=10");
  EXPECT_EQ(p.cells[3].label(), "node:net.core.somaxconn=64 /clients/0/rate_per_s=5");
}

TEST(sweep_settings, no_set_is_one_cell_and_new_roles_and_fields_are_added) {
  plan none = make_plan(text(), {});
  ASSERT_EQ(none.cells.size(), 1u);
  EXPECT_EQ(none.cells[0].label(), "");
  plan p =
      make_plan(text(), {"clients:net.ipv4.tcp_syn_linear_timeouts=0,4", "/proxy/half_close=true"});
  ASSERT_EQ(p.cells.size(), 2u);
  EXPECT_EQ(p.cells[1].scenario.sysctls.at("clients").at("net.ipv4.tcp_syn_linear_timeouts"), "4");
  EXPECT_TRUE(p.cells[1].scenario.proxy->half_close) << "a field left at its default can be set";
}

TEST(sweep_settings, errors_name_the_set_and_the_json_path) {
  struct bad {
    std::string set;
    std::vector<std::string> say; // parts the message must contain
  };
  const bad cases[] = {
      {"nodes:net.core.somaxconn=8",
       {"--set nodes:net.core.somaxconn=8", "/sysctls/nodes/net.core.somaxconn", "role"}},
      {"node:kernel.pid_max=8", {"--set node:kernel.pid_max=8", "/sysctls/node", "'net.'"}},
      {"node:net.core.no_such_key=1",
       {"--set node:net.core.no_such_key=1", "/sysctls/node/net.core.no_such_key",
        "/proc/sys/net/core/no_such_key does not exist"}},
      {"node:net.core.somaxconn=1.5",
       {"--set node:net.core.somaxconn=1.5", "/sysctls/node/net.core.somaxconn",
        "expected an integer or a string, got a number"}},
      {"/proxy/backlg=5", {"--set /proxy/backlg=5", "/proxy/backlg", "unknown field 'backlg'"}},
      {"/clients/3/rate_per_s=5", {"--set /clients/3/rate_per_s=5", "/clients/3"}},
      {"/clients/x/rate_per_s=5", {"--set /clients/x/rate_per_s=5", "/clients/x"}},
      {"/duration_ms/x=5", {"--set /duration_ms/x=5", "/duration_ms"}},
      {"/clients/0/rate_per_s=5,fast",
       {"--set /clients/0/rate_per_s=fast", "/clients/0/rate_per_s",
        "expected a number, got a string"}},
      {"/proxy/backlog=-5", {"--set /proxy/backlog=-5", "/proxy/backlog", "[-1, 65535]"}},
      {"/proxy/mode=ipvs", {"--set /proxy/mode=ipvs", "/proxy/mode", "\"userspace\""}},
      {"/a~2=1", {"--set /a~2=1", "JSON pointer"}},
      {"somaxconn=8", {"--set somaxconn=8", "ROLE:net.x.y"}},
      {"node:net.core.somaxconn", {"--set node:net.core.somaxconn", "KEY=V1,V2"}},
      {"node:net.core.somaxconn=8,", {"--set node:net.core.somaxconn=8,", "none empty"}},
      {"/=1", {"--set /=1"}},
  };
  for (const auto& c : cases) {
    std::string message = error_of({c.set});
    for (const auto& part : c.say)
      EXPECT_NE(message.find(part), std::string::npos)
          << "--set " << c.set << ": message \"" << message << "\" lacks \"" << part << "\"";
  }
  std::string twice = error_of({"node:net.core.somaxconn=8", "node:net.core.somaxconn=16"});
  EXPECT_NE(twice.find("set twice"), std::string::npos) << twice;
}

TEST(sweep_settings, a_merge_does_not_ask_this_kernel_for_the_shards_sysctls) {
  // The shards ran on kernels with the key; the machine merging their files may lack it.
  plan p = make_plan(text(), {"node:net.core.no_such_key=1,2"}, sysctl_check::none);
  ASSERT_EQ(p.axes.size(), 1u);
  EXPECT_EQ(p.cells.size(), 2u);
  EXPECT_NE(error_of({"node:net.core.no_such_key=1,2"}).find("does not exist"), std::string::npos);
}

TEST(sweep_settings, a_combination_the_reader_rejects_names_every_set_of_the_cell) {
  // Each value is fine alone; only this pair breaks a cross-field rule (a unique node_port).
  const char* two = R"({"name": "t", "duration_ms": 1000, "proxy": {"mode": "userspace"},
    "backends": [{"name": "a"}],
    "services": [{"name": "s1", "node_port": 30080}, {"name": "s2", "node_port": 30081}]})";
  try {
    make_plan({two, "two.json"}, {"/services/0/node_port=30090", "/services/1/node_port=30090"});
    ADD_FAILURE() << "no error";
  } catch (const input_error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("--set /services/0/node_port=30090 --set /services/1/node_port=30090"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("/services/1/node_port"), std::string::npos) << m;
  }
}

TEST(sweep_settings, fields_that_depend_on_each_other_may_be_set_together) {
  // Mode and preset are checked as a pair: a sweep of modes with the preset each needs works.
  plan p = make_plan(text(), {"/proxy/mode=nftables", "/proxy/preset=\"1.33\",\"1.37\""});
  ASSERT_EQ(p.cells.size(), 2u);
  EXPECT_EQ(p.cells[1].scenario.proxy->preset, scenario::proxy_preset::v1_37);
  // A value wrong in every combination is still blamed on its own --set.
  std::string m = error_of({"/proxy/mode=nftables", "/proxy/preset=\"1.24\""});
  EXPECT_NE(m.find("--set /proxy/mode=nftables: "), std::string::npos) << m;
  EXPECT_NE(m.find("/proxy/preset"), std::string::npos) << m;
}

TEST(sweep_settings, a_version_where_the_file_has_a_string_is_taken_as_written) {
  const char* iptables = R"({"name": "t", "duration_ms": 1000,
    "proxy": {"mode": "iptables", "preset": "1.24"}, "backends": [{"name": "a"}],
    "services": [{"name": "s1", "node_port": 30080, "endpoints": ["a"]}]})";
  plan p = make_plan({iptables, "i.json"}, {"/proxy/preset=1.20,1.6.5"});
  ASSERT_EQ(p.cells.size(), 2u);
  EXPECT_EQ(p.cells[0].scenario.proxy->preset, scenario::proxy_preset::v1_20); // not 1.2
  EXPECT_EQ(p.cells[1].scenario.proxy->preset, scenario::proxy_preset::v1_6_5);
}

TEST(sweep_settings, repeat_seeds_are_deterministic_distinct_and_json_safe) {
  std::set<std::uint64_t> seen;
  for (std::uint64_t sweep_seed : {0ULL, 1ULL, 42ULL, ~0ULL})
    for (std::size_t r = 0; r < 10; ++r) {
      std::uint64_t s = repeat_seed(sweep_seed, r);
      EXPECT_EQ(s, repeat_seed(sweep_seed, r));
      EXPECT_LT(s, 1ULL << 63);
      seen.insert(s);
    }
  EXPECT_EQ(seen.size(), 40u);
}

} // namespace
} // namespace backlog_lab::sweep
