// The reader's check that a preset belongs to the proxy mode (nftables: 1.29, 1.33, 1.37), and
// what only 1.37 has: the localhost NodePort proxy, reached by clients `from: node`.
#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/scenario/reader.hpp"
#include "tests/support/input_errors.hpp"

namespace backlog_lab::scenario {
namespace {

std::string with_proxy(const std::string& proxy) {
  return R"({"name": "t", "duration_ms": 1000, "proxy": )" + proxy + R"(,
  "backends": [{"name": "pod-a"}],
  "services": [{"name": "default/web:http", "node_port": 30080, "endpoints": ["pod-a"]}]})";
}

std::string error_of(const std::string& text) {
  return testing::input_error_of([&] { parse_scenario(text, "bad.json"); }, text);
}

TEST(reader, nftables_mode_takes_the_nftables_presets) {
  for (const auto& [name, preset] :
       {std::pair{"1.29", proxy_preset::v1_29}, std::pair{"1.33", proxy_preset::v1_33},
        std::pair{"1.37", proxy_preset::v1_37}}) {
    auto s = parse_scenario(
        with_proxy(std::string(R"({"mode": "nftables", "preset": ")") + name + "\"}"), "t.json");
    EXPECT_EQ(s.proxy->mode, proxy_mode::nftables);
    EXPECT_EQ(s.proxy->preset, preset);
  }
  auto msg = error_of(with_proxy(R"({"mode": "nftables", "preset": "1.24"})"));
  EXPECT_NE(msg.find("bad.json: /proxy/preset: expected \"1.29\", \"1.33\" or \"1.37\" for mode "
                     "\"nftables\""),
            std::string::npos)
      << msg;
  // No preset: iptables mode's default (1.5) is not one of them; the file must say which.
  msg = error_of(with_proxy(R"({"mode": "nftables"})"));
  EXPECT_NE(msg.find("/proxy/preset"), std::string::npos) << msg;
  msg = error_of(with_proxy(R"({"mode": "iptables", "preset": "1.33"})"));
  EXPECT_NE(msg.find("bad.json: /proxy/preset: expected \"1.5\", \"1.6.5\", \"1.20\" or \"1.24\" "
                     "for mode "
                     "\"iptables\""),
            std::string::npos)
      << msg;
}

TEST(reader, localhost_node_ports_only_with_nftables_1_37) {
  auto s = parse_scenario(
      with_proxy(R"({"mode": "nftables", "preset": "1.37", "localhost_node_ports": true})"),
      "t.json");
  EXPECT_TRUE(s.proxy->localhost_node_ports);
  s = parse_scenario(with_proxy(R"({"mode": "nftables", "preset": "1.37"})"), "t.json");
  EXPECT_FALSE(s.proxy->localhost_node_ports); // the gate is alpha: off unless asked for
  for (const char* proxy :
       {R"({"mode": "nftables", "preset": "1.33", "localhost_node_ports": true})",
        R"({"mode": "iptables", "preset": "1.24", "localhost_node_ports": true})",
        R"({"mode": "userspace", "localhost_node_ports": true})"}) {
    auto msg = error_of(with_proxy(proxy));
    EXPECT_NE(msg.find("bad.json: /proxy/localhost_node_ports: true only with mode "
                       "\"nftables\" and preset \"1.37\""),
              std::string::npos)
        << msg;
  }
  auto msg = error_of(
      with_proxy(R"({"mode": "nftables", "preset": "1.37", "localhost_node_ports": "yes"})"));
  EXPECT_NE(msg.find("/proxy/localhost_node_ports"), std::string::npos) << msg;
}

TEST(reader, a_client_runs_from_the_clients_namespace_or_the_node) {
  auto text = [](const std::string& from) {
    return R"({"name": "t", "duration_ms": 1000,
      "proxy": {"mode": "nftables", "preset": "1.37", "localhost_node_ports": true},
      "backends": [{"name": "pod-a"}],
      "services": [{"name": "default/web:http", "node_port": 30080, "endpoints": ["pod-a"]}],
      "clients": [{"name": "c", "target_service": "default/web:http", "rate_per_s": 5)" +
           from + "}]}";
  };
  EXPECT_EQ(parse_scenario(text(""), "t.json").clients[0].from, client_origin::clients);
  EXPECT_EQ(parse_scenario(text(R"(, "from": "node")"), "t.json").clients[0].from,
            client_origin::node);
  auto msg = error_of(text(R"(, "from": "pod")"));
  EXPECT_NE(msg.find("bad.json: /clients/0/from: expected one of \"clients\", \"node\""),
            std::string::npos)
      << msg;
}

} // namespace
} // namespace backlog_lab::scenario
