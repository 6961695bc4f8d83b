#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/scenario/reader.hpp"
#include "tests/support/input_errors.hpp"

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
  return testing::input_error_of([&] { parse_scenario(text, "bad.json"); }, text);
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
  EXPECT_EQ(s.proxy->mode, proxy_mode::userspace);
  EXPECT_EQ(s.proxy->dial_timeouts_ms, (std::vector<uint32_t>{250, 500, 1000, 2000}));
  EXPECT_EQ(s.backends.at(0).kind, backend_kind::http);
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

// Loads `path` expecting an input_error; returns its message.
std::string load_error_of(const std::string& path) {
  try {
    load_scenario(path);
  } catch (const input_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << path;
  return {};
}

TEST(reader, reads_only_regular_files_of_bounded_size) {
  const std::string dir = ::testing::TempDir() + "/reader-hostile";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/a.json");
  auto msg = load_error_of(dir + "/a.json");
  EXPECT_NE(msg.find("not a directory"), std::string::npos) << msg;

  // A FIFO with no writer: the open must not hang (O_NONBLOCK), and it is refused.
  ASSERT_EQ(::mkfifo((dir + "/fifo.json").c_str(), 0600), 0);
  msg = load_error_of(dir + "/fifo.json");
  EXPECT_NE(msg.find("not a FIFO"), std::string::npos) << msg;

  // A device that never ends.
  msg = load_error_of("/dev/zero");
  EXPECT_NE(msg.find("/dev/zero: a regular scenario file"), std::string::npos) << msg;

  // A file over the cap is refused before it is read (sparse: costs no disk).
  const std::string big = dir + "/big.json";
  std::ofstream(big) << minimal;
  std::filesystem::resize_file(big, max_scenario_bytes + 1);
  msg = load_error_of(big);
  EXPECT_NE(msg.find("at most 4 MiB (it has " + std::to_string(max_scenario_bytes + 1)),
            std::string::npos)
      << msg;
  // The cap itself is fine: the same text padded with spaces to exactly the cap parses.
  std::string padded = minimal;
  padded.resize(max_scenario_bytes, ' ');
  std::ofstream(big, std::ios::trunc) << padded;
  EXPECT_EQ(load_scenario(big).name, "t");
  std::filesystem::remove_all(dir);
}

TEST(reader, an_empty_scenario_name_is_an_error_not_the_default) {
  auto msg = load_error_of("");
  EXPECT_NE(msg.find("an empty name is not the default"), std::string::npos) << msg;
}

TEST(reader, a_key_repeated_in_an_object_is_an_error_naming_its_path) {
  auto msg =
      error_of(with("\"duration_ms\": 1000", "\"duration_ms\": 1000, \"duration_ms\": 3600000"));
  EXPECT_NE(msg.find("bad.json: /duration_ms: each key once per object"), std::string::npos) << msg;
  msg = error_of(with("\"rate_per_s\": 10", "\"rate_per_s\": 10, \"rate_per_s\": 20"));
  EXPECT_NE(msg.find("bad.json: /clients/0/rate_per_s: each key once"), std::string::npos) << msg;
  // The same key in different objects, and an array of objects, is fine.
  EXPECT_NO_THROW(
      parse_scenario(with("\"backends\": [{\"name\": \"pod-a\"}]",
                          "\"backends\": [{\"name\": \"pod-a\"}, {\"name\": \"pod-b\"}]"),
                     "ok.json"));
  msg = error_of(with("\"backends\": [{\"name\": \"pod-a\"}]",
                      "\"backends\": [{\"name\": \"pod-a\"}, {\"name\": \"pod-b\", \"port\": 1, "
                      "\"port\": 2}]"));
  EXPECT_NE(msg.find("bad.json: /backends/1/port: each key once"), std::string::npos) << msg;
}

TEST(reader, names_with_control_characters_or_unbounded_values_are_refused) {
  // A newline in the scenario's name could print a forged verdict line.
  auto msg = error_of(with("\"name\": \"t\"", "\"name\": \"t\\nPASS all expectations held\""));
  EXPECT_NE(msg.find("bad.json: /name: a name without control characters"), std::string::npos)
      << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "the message itself stays on one line: " << msg;
  msg = error_of(with("\"name\": \"pod-a\"", "\"name\": \"pod-\\u001b[2Ja\""));
  EXPECT_NE(msg.find("/backends/0/name"), std::string::npos) << msg;
  msg = error_of(with("\"name\": \"t\"", "\"name\": \"" + std::string(200, 'x') + "\""));
  EXPECT_NE(msg.find("at most 128 bytes (it has 200)"), std::string::npos) << msg;
  msg = error_of(with("\"proxy\"", "\"sysctls\": {\"node\": {\"net.core.somaxconn\": \"" +
                                       std::string(100000, '1') + "\"}}, \"proxy\""));
  EXPECT_NE(msg.find("/sysctls/node/net.core.somaxconn: a value of at most 256 bytes"),
            std::string::npos)
      << msg;
  EXPECT_LT(msg.size(), 400u) << "the value is not echoed";
  msg = error_of(with("\"proxy\"", "\"sysctls\": {\"node\": {\"net.core.somaxconn\\nx\": 1}}, "
                                   "\"proxy\""));
  EXPECT_NE(msg.find("a per-network-namespace sysctl key"), std::string::npos) << msg;
}

TEST(reader, a_negative_seed_is_shown_in_the_error) {
  auto msg = error_of(with("\"duration_ms\": 1000", "\"duration_ms\": 1000, \"seed\": -1"));
  EXPECT_NE(msg.find("/seed: expected a non-negative integer, got -1"), std::string::npos) << msg;
}

TEST(reader, the_labs_limits_are_checked_in_the_reader_at_their_path) {
  std::string backends;
  for (size_t i = 0; i <= limits::max_backends; ++i)
    backends += (i ? ", " : "") + std::string("{\"name\": \"pod-") + std::to_string(i) + "\"}";
  auto msg = error_of(with("\"backends\": [{\"name\": \"pod-a\"}]",
                           "\"backends\": [" + backends + ", {\"name\": \"pod-a\"}]"));
  EXPECT_NE(msg.find("bad.json: /backends: at most 1023 backends"), std::string::npos) << msg;
  const std::string load =
      R"({"name": "load", "target_service": "default/web:http", "rate_per_s": 10})";
  const std::string checkers = R"({"name": "hc-N", "target_service": "default/web:http", )"
                               R"("arrival": "heartbeat", "checkers": 200})";
  std::string groups = checkers + ", " + checkers + ", " + load;
  groups.replace(groups.find("hc-N"), 4, "hc-1");
  groups.replace(groups.find("hc-N"), 4, "hc-2");
  msg = error_of(with(load, groups));
  EXPECT_NE(msg.find("bad.json: /clients: at most 245 client addresses (one per group, one per "
                     "heartbeat checker); these groups need 401"),
            std::string::npos)
      << msg;
  msg = error_of(with("\"node_port\": 30080", "\"node_port\": 30080, \"cluster_ip\": \"10.96.0\""));
  EXPECT_NE(msg.find("bad.json: /services/0/cluster_ip: an IPv4 address"), std::string::npos)
      << msg;
  msg = error_of(with("\"name\": \"default/web:http\"", "\"name\": \"default/web http\""));
  EXPECT_NE(msg.find("bad.json: /services/0/name: a service name"), std::string::npos) << msg;
}

TEST(reader, loss_rules_are_read_and_checked_with_their_paths) {
  const std::string rules = R"("loss": [{"direction": "to-node", "port": 30080, "tcp_flags": "ack",
                                          "share": 0.9},
                                         {"direction": "from-node", "share": 1}],
  "clients")";
  scenario s = parse_scenario(with("\"clients\"", rules), "loss.json");
  ASSERT_EQ(s.loss.size(), 2u);
  EXPECT_EQ(s.loss[0].direction, loss_direction::to_node);
  EXPECT_EQ(s.loss[0].port, std::optional<uint16_t>(30080));
  EXPECT_EQ(s.loss[0].tcp_flags, tcp_flag_set::ack);
  EXPECT_DOUBLE_EQ(s.loss[0].share, 0.9);
  EXPECT_FALSE(s.loss[1].port.has_value());
  EXPECT_EQ(s.loss[1].tcp_flags, tcp_flag_set::any);

  auto loss = [&](const std::string& rule) {
    return error_of(with("\"clients\"", "\"loss\": [" + rule + "], \"clients\""));
  };
  auto msg = loss(R"({"direction": "inbound", "share": 0.5})");
  EXPECT_NE(msg.find("bad.json: /loss/0/direction: expected one of \"to-node\", \"from-node\""),
            std::string::npos)
      << msg;
  msg = loss(R"({"direction": "to-node", "share": 1.5})");
  EXPECT_NE(msg.find("bad.json: /loss/0/share: expected a number in [0.0, 1.0]"), std::string::npos)
      << msg;
  msg = loss(R"({"direction": "to-node"})");
  EXPECT_NE(msg.find("bad.json: /loss/0/share: required field 'share'"), std::string::npos) << msg;
  msg = loss(R"({"direction": "to-node", "share": 0.1, "tcp_flags": "SYN"})");
  EXPECT_NE(msg.find("bad.json: /loss/0/tcp_flags: expected one of \"any\", \"syn\""),
            std::string::npos)
      << msg;
  msg = loss(R"({"direction": "to-node", "share": 0.1, "port": 70000})");
  EXPECT_NE(msg.find("bad.json: /loss/0/port: expected an integer in [1, 65535]"),
            std::string::npos)
      << msg;
  msg = loss(R"({"direction": "to-node", "share": 0.1, "dport": 80})");
  EXPECT_NE(msg.find("bad.json: /loss/0/dport: unknown field 'dport'"), std::string::npos) << msg;
  msg = error_of(with("\"clients\"", "\"loss\": {}, \"clients\""));
  EXPECT_NE(msg.find("bad.json: /loss: expected an array"), std::string::npos) << msg;
}

TEST(reader, service_type_is_node_port_or_load_balancer) {
  EXPECT_EQ(parse_scenario(minimal, "min.json").services.at(0).type, service_type::node_port);
  scenario s = parse_scenario(
      with("\"node_port\": 30080", "\"type\": \"LoadBalancer\", \"node_port\": 30080"), "lb.json");
  EXPECT_EQ(s.services.at(0).type, service_type::load_balancer);
  auto msg =
      error_of(with("\"node_port\": 30080", "\"type\": \"ClusterIP\", \"node_port\": 30080"));
  EXPECT_NE(msg.find("bad.json: /services/0/type: expected one of \"NodePort\", \"LoadBalancer\""),
            std::string::npos)
      << msg;
}

TEST(reader, external_traffic_policy_and_other_node_endpoints) {
  const scenario minimal_scenario = parse_scenario(minimal, "min.json");
  const auto& plain = minimal_scenario.services.at(0);
  EXPECT_EQ(plain.external_traffic_policy, traffic_policy::cluster);
  EXPECT_EQ(plain.other_node_endpoints, 0u);
  scenario s = parse_scenario(with("\"node_port\": 30080",
                                   "\"external_traffic_policy\": \"Local\", "
                                   "\"other_node_endpoints\": 3, \"node_port\": 30080"),
                              "local.json");
  EXPECT_EQ(s.services.at(0).external_traffic_policy, traffic_policy::local);
  EXPECT_EQ(s.services.at(0).other_node_endpoints, 3u);
  auto msg = error_of(
      with("\"node_port\": 30080", "\"external_traffic_policy\": \"local\", \"node_port\": 30080"));
  EXPECT_NE(msg.find("bad.json: /services/0/external_traffic_policy: expected one of "
                     "\"Cluster\", \"Local\""),
            std::string::npos)
      << msg;
  msg =
      error_of(with("\"node_port\": 30080", "\"other_node_endpoints\": 241, \"node_port\": 30080"));
  EXPECT_NE(msg.find("/services/0/other_node_endpoints"), std::string::npos) << msg;
}

TEST(reader, nat_commit_delay_is_bounded) {
  EXPECT_EQ(parse_scenario(minimal, "min.json").proxy->nat_commit_delay_ms, 0u);
  scenario s = parse_scenario(
      with("\"mode\": \"userspace\"", "\"mode\": \"iptables\", \"nat_commit_delay_ms\": 400"),
      "race.json");
  EXPECT_EQ(s.proxy->nat_commit_delay_ms, 400u);
  auto msg = error_of(
      with("\"mode\": \"userspace\"", "\"mode\": \"iptables\", \"nat_commit_delay_ms\": 60001"));
  EXPECT_NE(msg.find("bad.json: /proxy/nat_commit_delay_ms"), std::string::npos) << msg;
}

TEST(reader, remote_endpoints_are_a_count_and_a_stand_in_checked_with_their_paths) {
  const std::string ep = "\"endpoints\": [\"pod-a\"]";
  scenario s = parse_scenario(
      with(ep, ep + ", \"remote_endpoints\": {\"count\": 40, \"stand_in\": \"pod-a\"}"),
      "remote.json");
  EXPECT_EQ(s.services.at(0).remote.count, 40u);
  EXPECT_EQ(s.services.at(0).remote.stand_in, "pod-a");
  EXPECT_EQ(parse_scenario(minimal, "min.json").services.at(0).remote.count, 0u);
  auto msg =
      error_of(with(ep, ep + ", \"remote_endpoints\": {\"count\": 1, \"stand_in\": \"pod-b\"}"));
  EXPECT_NE(msg.find("bad.json: /services/0/remote_endpoints/stand_in: the name of a backend in "
                     "/backends; 'pod-b' is not one"),
            std::string::npos)
      << msg;
  msg = error_of(with(ep, ep + ", \"remote_endpoints\": {\"count\": 0, \"stand_in\": \"pod-a\"}"));
  EXPECT_NE(
      msg.find("bad.json: /services/0/remote_endpoints/count: expected an integer in [1, 65536]"),
      std::string::npos)
      << msg;
  msg = error_of(with(ep, ep + ", \"remote_endpoints\": {\"stand_in\": \"pod-a\"}"));
  EXPECT_NE(msg.find("/services/0/remote_endpoints/count: required field 'count'"),
            std::string::npos)
      << msg;
  // Two services sharing one stand-in: 40,000 addresses round up to 65,536, which is all there
  // is; another stand-in's block then does not fit.
  std::string two =
      with(ep, ep + ", \"remote_endpoints\": {\"count\": 40000, \"stand_in\": \"pod-a\"}");
  s = parse_scenario(two, "fits.json");
  EXPECT_EQ(s.services.at(0).remote.count, 40000u);
  std::string second = R"(, {"name": "default/api:http", "node_port": 30081, )"
                       R"("remote_endpoints": {"count": 1, "stand_in": "pod-b"}}])";
  two.replace(two.find("}],\n  \"clients\""), 2, "}" + second);
  two.replace(two.find("[{\"name\": \"pod-a\"}]"), 19,
              "[{\"name\": \"pod-a\"}, {\"name\": \"pod-b\"}]");
  msg = error_of(two);
  EXPECT_NE(msg.find("bad.json: /services: at most 65536 remote endpoint addresses"),
            std::string::npos)
      << msg;
}

TEST(printable, escapes_control_bytes_and_bounds_length) {
  EXPECT_EQ(printable("a\nb\tc\x1b"), "a\\nb\\tc\\x1b");
  EXPECT_EQ(printable("a\nb", 100, true), "a\nb");
  EXPECT_EQ(printable(std::string(10, 'x'), 4), "xxxx... (10 bytes in all)");
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
