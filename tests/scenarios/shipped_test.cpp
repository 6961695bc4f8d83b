// The shipped scenarios, run for real and judged by their own expectations: every one passes,
// and every control of tests/scenarios/controls.json fails the claims it lists. What a scenario
// states is not restated here; the few checks C++ adds are facts its expectations cannot say
// (phase order, the rules listing, bounds that depend on this machine).
#include <algorithm>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "harness/lab/process.hpp"
#include "harness/runner/runner.hpp"
#include "harness/scenario/overrides.hpp"
#include "harness/scenario/reader.hpp"
#include "tests/support/incident_report.hpp"
#include "tests/support/run_checks.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::testing {
namespace {

using runner::run_result;

/// A run of a shipped scenario: as shipped, or a control of it.
struct shipped_case {
  std::string name;              ///< the scenario's name, or the control's
  std::string scenario;          ///< the shipped scenario it runs
  std::vector<std::string> sets; ///< --set overrides (a control's)
  std::optional<std::uint64_t> seed;
  std::vector<std::string> fail; ///< a control: metrics whose expectations must fail
  bool control = false;
};

// Names the case in gtest's and ctest's output instead of dumping its bytes.
void PrintTo(const shipped_case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<shipped_case> controls() {
  std::ifstream in(BACKLOG_LAB_CONTROLS_JSON);
  auto doc = nlohmann::json::parse(in);
  std::vector<shipped_case> out;
  for (const auto& c : doc.at("controls")) {
    shipped_case k{c.at("name"), c.at("scenario"), c.at("set"), std::nullopt, c.at("fail"), true};
    if (c.contains("seed")) k.seed = c.at("seed").get<std::uint64_t>();
    out.push_back(std::move(k));
  }
  return out;
}

bool is_control_scenario(const std::string& name) {
  return name.size() > 8 && name.compare(name.size() - 8, 8, "-control") == 0;
}

std::vector<shipped_case> scenarios() {
  std::vector<shipped_case> out;
  for (const auto& name : scenario::builtin_scenario_names())
    // The 10,000-Service scenario runs in the slow runner_scale test; "-control" ones are
    // controls.
    if (name != "scale-10000-services" && !is_control_scenario(name))
      out.push_back({name,
                     name,
                     {},
                     name == "incident-2018-03" ? 7 : std::optional<std::uint64_t>{},
                     {},
                     false});
  return out;
}

// The program a scenario needs that this machine lacks, if any (nft for the nftables proxy and
// for loss rules, argv[0] of each exec program and of its metrics command).
std::optional<std::string> missing_program(const scenario::scenario& s) {
  std::vector<std::string> needed;
  if ((s.proxy && s.proxy->mode == scenario::proxy_mode::nftables) || !s.loss.empty())
    needed.push_back("nft");
  auto add = [&](const scenario::exec_spec& e) {
    if (!e.argv.empty()) needed.push_back(e.argv.front());
    if (!e.metrics_command.empty()) needed.push_back(e.metrics_command.front());
  };
  for (const auto& b : s.backends)
    add(b.exec);
  for (const auto& c : s.clients)
    add(c.exec);
  if (s.proxy) add(s.proxy->exec);
  for (const auto& p : needed)
    if (!lab::have_program(p)) return p;
  return std::nullopt;
}

// Checks C++ adds to a run, by case name: what the scenario's expectations cannot state.
using extra_check = void (*)(const run_result&);

void incident_extras(const run_result& r) {
  EXPECT_EQ(r.seed, 7u);
  // The wall time by phase: every phase once, in order; the timeline at least the scenario's
  // duration; one iptables-restore time per sync.
  std::vector<std::string> phases;
  for (const auto& p : r.wall) {
    phases.push_back(p.name);
    EXPECT_GE(p.ms, 0) << p.name;
  }
  EXPECT_EQ(phases, (std::vector<std::string>{"lab", "backends", "proxy", "observer", "clients",
                                              "timeline", "drain", "final_census", "teardown"}));
  ASSERT_EQ(r.wall.size(), 9u);
  EXPECT_GE(r.wall[5].ms, r.scenario.duration_ms);
  ASSERT_TRUE(r.proxy);
  EXPECT_EQ(r.proxy->rule_sync_ms.size(), r.proxy->rule_syncs);
  EXPECT_GE(r.proxy->rule_syncs, 2u); // the install and the scenario's set-endpoints
  // The full NodePort's own drops over time (run --json drops_series, the HTML page's chart):
  // they grow, and the last sample is at most what the final census counted a moment later.
  const runner::listener_track* held = r.find_listener("node", 30720);
  ASSERT_NE(held, nullptr);
  ASSERT_FALSE(held->drop_samples.empty());
  const double last_drops = static_cast<double>(held->drop_samples.back().values.at("drops"));
  EXPECT_GT(last_drops, 0);
  EXPECT_LE(last_drops, metric(r, "listener.node.30720.drops"));
  // Each listener's own drops (sk_drops): the node's listeners live as long as its namespace, so
  // together they are the listen drops the namespace counted. The counters are read just after
  // the census, while retransmitted SYNs still reach the full queues (495 against 500 once), so
  // the census's sum is at most the counter and within a few percent of it.
  double listener_drops = 0;
  for (const auto& [name, value] : r.metrics)
    if (name.rfind("listener.node.", 0) == 0 && name.size() > 6 &&
        name.compare(name.size() - 6, 6, ".drops") == 0)
      listener_drops += value;
  EXPECT_LE(listener_drops, metric(r, "counter.node.TcpExtListenDrops"));
  EXPECT_GE(listener_drops, 0.95 * metric(r, "counter.node.TcpExtListenDrops"));
  // The rules listing is what `iptables -t nat -S` printed in the node at the end. 30720 has
  // the report's 40 endpoints back: `--show-rules` lists its balancing rules with exactly the
  // report's 39 probabilities, in order, and a last rule without one.
  EXPECT_NE(r.rules_listing.find("-A KUBE-NODEPORTS"), std::string::npos) << r.rules_listing;
  EXPECT_NE(r.rules_listing.find("--dport 30720"), std::string::npos);
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
  EXPECT_EQ(listed, report_probabilities);
  // Every timeline event ran, in order.
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(r.events[0].action, "set-endpoints");
  EXPECT_LE(r.events[0].at_ms, r.events[3].at_ms);
}

const std::map<std::string, extra_check>& extras() {
  static const std::map<std::string, extra_check> table = {
      {"incident-2018-03", incident_extras},
      {"incident-2018-03-node",
       [](const run_result& r) {
         // Every unaccepted child the census counted is in some listener's accept queue.
         EXPECT_EQ(metric(r, "node.unaccepted_total"), metric(r, "node.accept_queue_total"));
       }},
      {"userspace-frozen-backends",
       [](const run_result& r) {
         // backlog + 1 at least (the scenario's claim); at most one more per CPU: the lockless
         // listener lets handshakes completing at the same moment on other CPUs each pass the
         // full check before one is queued (130 once, on 2 CPUs, in CI).
         EXPECT_LE(metric(r, "listener.node.30080.accept_queue_peak"),
                   128 + std::thread::hardware_concurrency());
       }},
      {"kube-proxy-1.6.5-restore-race",
       [](const run_result& r) {
         EXPECT_EQ(metric(r, "proxy.rule_sync_failures"), 0);
         EXPECT_EQ(metric(r, "proxy.rule_syncs"), 2); // the install and the endpoints' sync
       }},
      {"incident-2018-03-kube-proxy-nftables",
       [](const run_result& r) {
         EXPECT_EQ(metric(r, "proxy.rule_sync_failures"), 0);
         EXPECT_GE(metric(r, "proxy.rule_syncs"), 3); // the install and the two rollouts
       }},
      {"kube-proxy-1.37-localhost-nodeport",
       [](const run_result& r) {
         EXPECT_EQ(metric(r, "proxy.listen_failures"), 0);
         // Every node-local connection went through the proxy, each with one dial.
         EXPECT_GE(metric(r, "proxy.accepted"),
                   metric(r, "clients.node-web.answered") + metric(r, "clients.node-api.answered"));
         EXPECT_EQ(metric(r, "proxy.dial_attempts"), metric(r, "proxy.accepted"));
       }},
      {"incident-2018-03-nginx-front",
       [](const run_result& r) {
         // nginx's own log of what it sent upstream covers every queued request.
         EXPECT_GE(metric(r, "program.tengine.sent_requests_logged"), 129);
       }},
      {"userspace-healthy-backends-control",
       [](const run_result& r) {
         EXPECT_LT(metric(r, "listener.node.30080.accept_queue_peak"), 129);
         EXPECT_EQ(metric(r, "counter.node.TcpExtListenOverflows"), 0);
       }},
      {"loss-final-ack without loss",
       [](const run_result& r) {
         // The rule is there (its counter stays 0), the final ACKs arrive, all 60 queue.
         EXPECT_EQ(metric(r, "loss.0.dropped"), 0);
         EXPECT_EQ(metric(r, "listener.node.30080.accept_queue"), 60);
       }},
      {"external-traffic-local, no endpoints under 1.5",
       [](const run_result& r) {
         // No REJECT, no drop: the held socket takes every client.
         EXPECT_EQ(metric(r, "listener.node.30080.accept_queue_peak"), 10);
       }},
      {"1.37 localhost NodePorts under 1.33",
       [](const run_result& r) {
         EXPECT_EQ(metric(r, "clients.node-web.refused"), metric(r, "clients.node-web.started"));
       }},
      {"1.37 localhost NodePorts under iptables 1.24",
       [](const run_result& r) {
         // route_localnet: iptables mode serves 127.0.0.1:NodePort in the kernel.
         EXPECT_GE(metric(r, "clients.node-web.answered_share"), 0.99);
       }},
  };
  return table;
}

std::string test_name(const ::testing::TestParamInfo<shipped_case>& info) {
  std::string out;
  for (char c : info.param.name)
    out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

class shipped : public ::testing::TestWithParam<shipped_case> {};

TEST_P(shipped, concludes_as_its_expectations_claim) {
  BACKLOG_LAB_REQUIRE_LAB();
  const shipped_case& c = GetParam();
  scenario::scenario s = scenario::apply_sets(scenario::read_scenario_source(c.scenario), c.sets);
  if (auto missing = missing_program(s)) GTEST_SKIP() << *missing << " not installed";
  run_result r = runner::run_scenario(s, {.seed = c.seed});
  if (!c.control) {
    EXPECT_TRUE(r.passed()) << failures(r);
  } else {
    EXPECT_FALSE(r.passed());
    for (const auto& m : c.fail)
      EXPECT_FALSE(expectation_passed(r, m))
          << m << " held in the control: "
          << (r.metrics.count(m) ? std::to_string(r.metrics.at(m)) : "no metric");
  }
  if (auto it = extras().find(c.name); it != extras().end()) it->second(r);
}

INSTANTIATE_TEST_SUITE_P(scenario, shipped, ::testing::ValuesIn(scenarios()), test_name);
INSTANTIATE_TEST_SUITE_P(control, shipped, ::testing::ValuesIn(controls()), test_name);

TEST(shipped_controls, every_control_scenario_and_extra_check_is_listed) {
  // A shipped "-control" scenario runs only as a control: one missing from controls.json would
  // run nowhere.
  std::vector<std::string> listed;
  for (const auto& c : controls()) {
    EXPECT_FALSE(c.fail.empty()) << c.name << " names no claim that must fail";
    listed.push_back(c.scenario);
  }
  for (const auto& name : scenario::builtin_scenario_names()) {
    if (is_control_scenario(name)) {
      EXPECT_NE(std::find(listed.begin(), listed.end(), name), listed.end())
          << name << " is not in tests/scenarios/controls.json";
    }
  }
  // Every extra check belongs to a case that runs.
  std::vector<std::string> names;
  for (const auto& c : scenarios())
    names.push_back(c.name);
  for (const auto& c : controls())
    names.push_back(c.name);
  for (const auto& [name, check] : extras())
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
}

} // namespace
} // namespace backlog_lab::testing
