// The shipped scenarios, run for real: what each one claims is what the kernel shows.
#include <atomic>
#include <chrono>
#include <gtest/gtest.h>
#include <thread>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/runner/runner.hpp"
#include "harness/scenario/reader.hpp"
#include "tests/support/incident_report.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::runner {
namespace {

double metric(const run_result& r, const std::string& name) {
  auto it = r.metrics.find(name);
  EXPECT_NE(it, r.metrics.end()) << "no metric " << name;
  return it == r.metrics.end() ? -1 : it->second;
}

std::string failures(const run_result& r) {
  std::string out;
  for (const auto& e : r.expectations)
    if (!e.passed)
      out += e.spec.metric + " " + std::string(scenario::name_of(e.spec.op)) + " measured " +
             (e.measured ? std::to_string(*e.measured) : "-") + " " + e.note + "\n";
  return out;
}

const expect::expectation_result* find_expectation(const run_result& r, const std::string& metric) {
  for (const auto& e : r.expectations)
    if (e.spec.metric == metric) return &e;
  return nullptr;
}

TEST(runner, incident_default_scenario_reproduces_the_node) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto begin = std::chrono::steady_clock::now();
  run_result r = run_scenario(scenario::load_scenario(scenario::default_scenario), {.seed = 7});
  const double elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count();
  EXPECT_TRUE(r.passed()) << failures(r);
  EXPECT_EQ(r.seed, 7u);
  // The wall time by phase: every phase once, in order; together no more than the whole call,
  // the timeline at least the scenario's duration; one iptables-restore time per sync.
  std::vector<std::string> phases;
  double sum = 0;
  for (const auto& p : r.wall) {
    phases.push_back(p.name);
    EXPECT_GE(p.ms, 0) << p.name;
    sum += p.ms;
  }
  EXPECT_EQ(phases, (std::vector<std::string>{"lab", "backends", "proxy", "observer", "clients",
                                              "timeline", "drain", "final_census", "teardown"}));
  EXPECT_LE(sum, elapsed_ms);
  ASSERT_EQ(r.wall.size(), 9u);
  EXPECT_GE(r.wall[5].ms, r.scenario.duration_ms);
  ASSERT_TRUE(r.proxy);
  EXPECT_EQ(r.proxy->rule_sync_ms.size(), r.proxy->rule_syncs);
  EXPECT_GE(r.proxy->rule_syncs, 2u); // the install and the scenario's set-endpoints
  // The full NodePort's own drops over time (run --json drops_series, the HTML page's chart):
  // they grow, and the last sample is at most what the final census counted a moment later.
  const listener_track* held = r.find_listener("node", 30720);
  ASSERT_NE(held, nullptr);
  ASSERT_FALSE(held->drop_samples.empty());
  const double last_drops = static_cast<double>(held->drop_samples.back().values.at("drops"));
  EXPECT_GT(last_drops, 0);
  EXPECT_LE(last_drops, metric(r, "listener.node.30720.drops"));
  EXPECT_EQ(metric(r, "listener.node.30720.accept_queue"), 129);
  EXPECT_EQ(metric(r, "listener.node.30720.backlog"), 128);
  EXPECT_EQ(metric(r, "listener.node.30720.close_wait_unaccepted"), 129);
  EXPECT_EQ(metric(r, "listener.node.31425.unaccepted_recvq_max"), 1);
  EXPECT_GT(metric(r, "counter.node.TcpExtListenOverflows"), 0);
  // Each listener's own drops (sk_drops): the node's listeners live as long as its namespace, so
  // together they are the listen drops the namespace counted. The counters are read just after
  // the census, while retransmitted SYNs still reach the full queues (495 against 500 once), so
  // the census's sum is at most the counter and within a few percent of it.
  double listener_drops = 0;
  for (const auto& [name, value] : r.metrics)
    if (name.rfind("listener.node.", 0) == 0 && name.size() > 6 &&
        name.compare(name.size() - 6, 6, ".drops") == 0)
      listener_drops += value;
  EXPECT_GT(metric(r, "listener.node.30720.drops"), 0);
  EXPECT_LE(listener_drops, metric(r, "counter.node.TcpExtListenDrops"));
  EXPECT_GE(listener_drops, 0.95 * metric(r, "counter.node.TcpExtListenDrops"));
  // The rules listing is what `iptables -t nat -S` printed in the node at the end.
  EXPECT_NE(r.rules_listing.find("-A KUBE-NODEPORTS"), std::string::npos) << r.rules_listing;
  EXPECT_NE(r.rules_listing.find("--dport 30720"), std::string::npos);
  // 30720 has the report's 40 endpoints back at the end: `--show-rules` lists its balancing
  // rules with exactly the report's 39 probabilities, in order, and a last rule without one.
  std::vector<std::string> listed;
  std::size_t balancing = 0;
  const std::string svc = "-A KUBE-SVC-RK4J2BHJ4QTMGP2E ";
  for (std::size_t at = r.rules_listing.find(svc); at != std::string::npos;
       at = r.rules_listing.find(svc, at + 1)) {
    std::string line = r.rules_listing.substr(at, r.rules_listing.find('\n', at) - at);
    ++balancing;
    auto p = line.find("--probability ");
    if (p != std::string::npos)
      listed.push_back(line.substr(p + 14, line.find(' ', p + 14) - p - 14));
  }
  EXPECT_EQ(balancing, 40u) << r.rules_listing;
  EXPECT_EQ(listed, testing::report_probabilities);
  // Every timeline event ran, in order.
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(r.events[0].action, "set-endpoints");
  EXPECT_LE(r.events[0].at_ms, r.events[3].at_ms);
}

TEST(runner, userspace_frozen_backends_fill_the_nodeport_and_its_control_does_not) {
  BACKLOG_LAB_REQUIRE_LAB();
  run_result frozen = run_scenario(scenario::load_scenario("userspace-frozen-backends"));
  EXPECT_TRUE(frozen.passed()) << failures(frozen);
  // backlog + 1; the lockless listener lets handshakes completing at the same moment on other
  // CPUs each pass the full check before one is queued (130 once, on 2 CPUs, in CI).
  EXPECT_GE(metric(frozen, "listener.node.30080.accept_queue_peak"), 129);
  EXPECT_LE(metric(frozen, "listener.node.30080.accept_queue_peak"),
            128 + std::thread::hardware_concurrency());
  EXPECT_GT(metric(frozen, "clients.web.connect_ms.p99"), 900);

  // Same load, healthy backends: the queue and drop expectations must fail, which shows they
  // can tell the two apart.
  run_result control = run_scenario(scenario::load_scenario("userspace-healthy-backends-control"));
  EXPECT_FALSE(control.passed());
  for (const char* m :
       {"listener.node.30080.accept_queue_peak", "counter.node.TcpExtListenOverflows",
        "listener.node.30080.full_ms", "clients.web.connect_ms.p99"}) {
    const auto* e = find_expectation(control, m);
    ASSERT_NE(e, nullptr) << m;
    EXPECT_FALSE(e->passed) << m << " held on the healthy control";
    ASSERT_TRUE(e->measured.has_value()) << m;
  }
  EXPECT_LT(metric(control, "listener.node.30080.accept_queue_peak"), 129);
  EXPECT_EQ(metric(control, "counter.node.TcpExtListenOverflows"), 0);
}

TEST(runner, loss_final_ack_keeps_handshakes_in_syn_recv_and_without_loss_it_fails) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!lab::have_program("nft")) GTEST_SKIP() << "needs nft";
  auto s = scenario::load_scenario("loss-final-ack");
  run_result lossy = run_scenario(s, {.seed = 5});
  EXPECT_TRUE(lossy.passed()) << failures(lossy);

  // The control: the same run with a share of 0. The rule is there (its counter stays 0), the
  // final ACKs arrive, all 60 connections queue, and what the scenario claims fails.
  ASSERT_EQ(s.loss.size(), 1u);
  s.loss[0].share = 0;
  run_result control = run_scenario(s, {.seed = 5});
  EXPECT_FALSE(control.passed());
  for (const char* metric :
       {"loss.0.dropped", "census.node.SYN-RECV", "listener.node.30080.accept_queue",
        "counter.node.TcpExtTCPSynRetrans"}) {
    const auto* e = find_expectation(control, metric);
    ASSERT_NE(e, nullptr) << metric;
    EXPECT_FALSE(e->passed) << metric
                            << " held without loss: " << (e->measured ? *e->measured : -1);
  }
  EXPECT_EQ(control.metrics.at("loss.0.dropped"), 0);
  EXPECT_EQ(control.metrics.at("listener.node.30080.accept_queue"), 60);
}

TEST(runner, the_whole_node_has_57_ports_33_queues_and_21_full) {
  BACKLOG_LAB_REQUIRE_LAB();
  run_result r = run_scenario(scenario::load_scenario("incident-2018-03-node"));
  EXPECT_TRUE(r.passed()) << failures(r);
  EXPECT_EQ(metric(r, "node.listeners"), 57);
  EXPECT_EQ(metric(r, "node.listeners_nonempty"), 33);
  EXPECT_EQ(metric(r, "node.listeners_full"), 21);
  EXPECT_EQ(metric(r, "node.unaccepted_total"), metric(r, "node.accept_queue_total"));
  EXPECT_GE(metric(r, "census.node.CLOSE-WAIT"), 3000);
}

TEST(runner, fixed_kube_proxy_versions_do_not_pile_up) {
  BACKLOG_LAB_REQUIRE_LAB();
  for (const char* name :
       {"incident-2018-03-kube-proxy-1.6.5", "incident-2018-03-kube-proxy-1.24"}) {
    SCOPED_TRACE(name);
    run_result r = run_scenario(scenario::load_scenario(name));
    EXPECT_TRUE(r.passed()) << failures(r);
    EXPECT_EQ(metric(r, "counter.node.TcpExtListenOverflows"), 0);
    // The scenario bounds its own leak (r.passed()); whatever the conntrack race lets through,
    // it is never a full port's worth, as under 1.5.
    EXPECT_LT(metric(r, "census.node.CLOSE-WAIT"), 129);
    EXPECT_GT(metric(r, "clients.tengine-a.refused"), 0);
  }
}

TEST(runner, local_policy_without_a_local_endpoint_drops_and_its_controls_fail) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto s = scenario::load_scenario("external-traffic-local-no-local-endpoint");
  run_result dropped = run_scenario(s, {.seed = 3});
  EXPECT_TRUE(dropped.passed()) << failures(dropped);

  // No endpoints anywhere under 1.5: no REJECT, no drop; the held socket takes the clients.
  auto none = s;
  none.services.at(0).other_node_endpoints = 0;
  none.proxy->preset = scenario::proxy_preset::v1_5;
  run_result queued = run_scenario(none, {.seed = 3});
  for (const char* m : {"listener.node.30080.accept_queue_peak", "clients.lb.syn_unanswered",
                        "counter.node.TcpPassiveOpens"}) {
    const auto* e = find_expectation(queued, m);
    ASSERT_NE(e, nullptr) << m;
    EXPECT_FALSE(e->passed) << m << " held with the 1.5 preset and no endpoints";
  }
  EXPECT_EQ(metric(queued, "listener.node.30080.accept_queue_peak"), 10);

  // Cluster policy: the SYNs are DNATed to the other nodes' endpoints, which this node cannot
  // route: ICMP errors come back instead of silence.
  auto cluster = s;
  cluster.services.at(0).external_traffic_policy = scenario::traffic_policy::cluster;
  run_result routed = run_scenario(cluster, {.seed = 3});
  for (const char* m : {"clients.lb.syn_unanswered", "counter.clients.IcmpInDestUnreachs"}) {
    const auto* e = find_expectation(routed, m);
    ASSERT_NE(e, nullptr) << m;
    EXPECT_FALSE(e->passed) << m << " held under the Cluster policy";
  }
}

TEST(runner, restore_race_piles_close_wait_and_its_controls_do_not) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto s = scenario::load_scenario("kube-proxy-1.6.5-restore-race");
  run_result race = run_scenario(s, {.seed = 4});
  EXPECT_TRUE(race.passed()) << failures(race);
  EXPECT_EQ(metric(race, "proxy.rule_sync_failures"), 0);
  EXPECT_EQ(metric(race, "proxy.rule_syncs"), 2); // the install and the endpoints' sync

  // 1.24 holds no port: the same gap answers with RST and nothing piles up. Without the gap the
  // window is the few ms the lab's nat section takes.
  auto fixed = s;
  fixed.proxy->preset = scenario::proxy_preset::v1_24;
  auto no_gap = s;
  no_gap.proxy->nat_commit_delay_ms = 0;
  for (const auto* control : {&fixed, &no_gap}) {
    run_result r = run_scenario(*control, {.seed = 4});
    SCOPED_TRACE(control == &fixed ? "preset 1.24" : "no nat commit delay");
    for (const char* m : {"census.node.CLOSE-WAIT", "max:listener.node.*.close_wait_unaccepted"}) {
      const auto* e = find_expectation(r, m);
      ASSERT_NE(e, nullptr) << m;
      EXPECT_FALSE(e->passed) << m << " held: " << (e->measured ? *e->measured : -1);
    }
  }
}

TEST(runner, restore_race_under_1_20_holds_ipv4_and_fails_under_the_other_presets) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto s = scenario::load_scenario("kube-proxy-1.20-restore-race");
  run_result race = run_scenario(s, {.seed = 4});
  EXPECT_TRUE(race.passed()) << failures(race);
  EXPECT_EQ(metric(race, "listener.node.30080.ipv4"), 1);

  // 1.6.5 races the same way but holds the port dual stack (*:30080); 1.24 holds none.
  auto dual = s;
  dual.proxy->preset = scenario::proxy_preset::v1_6_5;
  run_result r = run_scenario(dual, {.seed = 4});
  const auto* shape = find_expectation(r, "listener.node.30080.ipv4");
  ASSERT_NE(shape, nullptr);
  EXPECT_FALSE(shape->passed) << "the 1.6.5 socket listed as 0.0.0.0:30080";
  EXPECT_EQ(metric(r, "listener.node.30080.ipv4"), 0);

  auto fixed = s;
  fixed.proxy->preset = scenario::proxy_preset::v1_24;
  r = run_scenario(fixed, {.seed = 4});
  for (const char* m : {"listener.node.30080.ipv4", "census.node.CLOSE-WAIT",
                        "max:listener.node.*.close_wait_unaccepted"}) {
    const auto* e = find_expectation(r, m);
    ASSERT_NE(e, nullptr) << m;
    EXPECT_FALSE(e->passed) << m << " held under 1.24";
  }
}

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

} // namespace
} // namespace backlog_lab::runner
