// The shipped incident-2018-03-kube-proxy-nftables scenario, and its control: the same run
// with kube-proxy 1.5's iptables mode fails what the scenario claims.
#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/runner/runner.hpp"
#include "harness/scenario/reader.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::runner {
namespace {

std::string failures(const run_result& r) {
  std::string out;
  for (const auto& e : r.expectations)
    if (!e.passed)
      out += e.spec.metric + " measured " + (e.measured ? std::to_string(*e.measured) : "-") + " " +
             e.note + "\n";
  return out;
}

const expect::expectation_result* find_expectation(const run_result& r, const std::string& metric) {
  for (const auto& e : r.expectations)
    if (e.spec.metric == metric) return &e;
  return nullptr;
}

TEST(runner, nftables_mode_piles_nothing_up_and_iptables_1_5_fails_its_claims) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!lab::have_program("nft")) GTEST_SKIP() << "needs nft";
  auto s = scenario::load_scenario("incident-2018-03-kube-proxy-nftables");
  ASSERT_TRUE(s.proxy);
  EXPECT_EQ(s.proxy->mode, scenario::proxy_mode::nftables);
  run_result r = run_scenario(s, {.seed = 6});
  EXPECT_TRUE(r.passed()) << failures(r);
  EXPECT_EQ(r.metrics.at("proxy.rule_sync_failures"), 0);
  EXPECT_GE(r.metrics.at("proxy.rule_syncs"), 3); // the install and the two rollouts

  // The same run under kube-proxy 1.5 (iptables mode, NodePorts held, no REJECT).
  auto old = s;
  old.proxy->mode = scenario::proxy_mode::iptables;
  old.proxy->preset = scenario::proxy_preset::v1_5;
  run_result held = run_scenario(old, {.seed = 6});
  for (const char* m : {"node.listeners", "census.node.CLOSE-WAIT", "node.unaccepted_total",
                        "clients.tengine-a.refused"}) {
    const auto* e = find_expectation(held, m);
    ASSERT_NE(e, nullptr) << m;
    EXPECT_FALSE(e->passed) << m << " held under 1.5: " << (e->measured ? *e->measured : -1);
  }
}

// kube-proxy-1.37-localhost-nodeport: node-local clients served on 127.0.0.1:NodePort by 1.37's
// proxy; without it (1.33, or iptables 1.24 which DNATs them with route_localnet) no listener
// is there and the scenario's claims about it fail.
TEST(runner, localhost_node_port_proxy_of_1_37_and_the_presets_without_it) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!lab::have_program("nft")) GTEST_SKIP() << "needs nft";
  auto s = scenario::load_scenario("kube-proxy-1.37-localhost-nodeport");
  ASSERT_TRUE(s.proxy);
  ASSERT_TRUE(s.proxy->localhost_node_ports);
  run_result r = run_scenario(s, {.seed = 3});
  EXPECT_TRUE(r.passed()) << failures(r);
  EXPECT_EQ(r.metrics.at("proxy.listen_failures"), 0);
  // Every node-local connection went through the proxy, each with one dial.
  const double node_local =
      r.metrics.at("clients.node-web.answered") + r.metrics.at("clients.node-api.answered");
  EXPECT_GE(r.metrics.at("proxy.accepted"), node_local);
  EXPECT_EQ(r.metrics.at("proxy.dial_attempts"), r.metrics.at("proxy.accepted"));

  auto v133 = s;
  v133.proxy->preset = scenario::proxy_preset::v1_33;
  v133.proxy->localhost_node_ports = false;
  run_result without = run_scenario(v133, {.seed = 3});
  for (const char* m : {"node.listeners", "clients.node-web.answered_share",
                        "clients.node-api.answered", "proxy.accepted"}) {
    const auto* e = find_expectation(without, m);
    ASSERT_NE(e, nullptr) << m;
    EXPECT_FALSE(e->passed) << m << " held under 1.33: " << (e->measured ? *e->measured : -1);
  }
  EXPECT_EQ(without.metrics.at("clients.node-web.refused"),
            without.metrics.at("clients.node-web.started"));

  auto v124 = s;
  v124.proxy->mode = scenario::proxy_mode::iptables;
  v124.proxy->preset = scenario::proxy_preset::v1_24;
  v124.proxy->localhost_node_ports = false;
  run_result dnat = run_scenario(v124, {.seed = 3});
  EXPECT_FALSE(find_expectation(dnat, "node.listeners")->passed);
  EXPECT_FALSE(find_expectation(dnat, "proxy.accepted")->passed);
  // route_localnet: iptables mode serves 127.0.0.1:NodePort in the kernel.
  EXPECT_GE(dnat.metrics.at("clients.node-web.answered_share"), 0.99);
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
