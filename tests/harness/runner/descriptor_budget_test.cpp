#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/core/error.hpp"
#include "harness/runner/descriptor_budget.hpp"
#include "harness/scenario/reader.hpp"
#include "scenarios/builtin.hpp"

namespace backlog_lab::runner {
namespace {

using json = nlohmann::json;

/// A scenario with `pods` pods and `services` Services (one endpoint each) under `proxy`, and
/// one built-in client group `client`.
scenario::scenario lab_of(std::size_t pods, std::size_t services, json proxy,
                          json client = {{"name", "c"},
                                         {"target_service", "ns/s0:http"},
                                         {"arrival", "constant"},
                                         {"rate_per_s", 20}}) {
  json d = {{"name", "budget"}, {"duration_ms", 1000}, {"proxy", std::move(proxy)}};
  for (std::size_t i = 0; i < pods; ++i)
    d["backends"].push_back({{"name", "p" + std::to_string(i)}});
  for (std::size_t i = 0; i < services; ++i)
    d["services"].push_back({{"name", "ns/s" + std::to_string(i) + ":http"},
                             {"node_port", 20000 + i},
                             {"endpoints", {"p" + std::to_string(i % pods)}}});
  d["clients"].push_back(std::move(client));
  return scenario::parse_scenario(d.dump(), "big.json");
}

const json preset_1_5 = {{"mode", "iptables"}, {"preset", "1.5"}};

TEST(descriptor_budget, the_largest_lab_is_estimated_as_measured) {
  // Measured: 1,023 pods and 10,000 held NodePorts (preset 1.5) peaked at 15,204 descriptors.
  auto e = estimate_descriptors(lab_of(1023, 10000, preset_1_5));
  EXPECT_GE(e.total, 15204u);
  EXPECT_LE(e.total, 15204u * 11 / 10) << "an estimate far above the measurement refuses labs "
                                          "that would run";
}

TEST(descriptor_budget, a_lab_over_the_limit_is_refused_naming_the_file_the_parts_and_the_way_out) {
  auto s = lab_of(1023, 10000, preset_1_5);
  try {
    check_descriptor_budget(s, 12000);
    FAIL() << "not refused";
  } catch (const input_error& e) {
    std::string m = e.what();
    EXPECT_EQ(e.where(), "big.json");
    EXPECT_NE(m.find("/services: 10000 held NodePorts (10,000)"), std::string::npos) << m;
    EXPECT_NE(m.find("/backends: 1023 pods (5,115)"), std::string::npos) << m;
    EXPECT_NE(m.find("this process may open 12,000 more"), std::string::npos) << m;
    EXPECT_NE(m.find("ulimit -Hn"), std::string::npos) << m;
    EXPECT_NE(m.find("fewer Services"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(check_descriptor_budget(s, 20000));
}

TEST(descriptor_budget, only_presets_that_hold_node_ports_pay_for_them) {
  auto held = estimate_descriptors(lab_of(1, 3000, preset_1_5)).total;
  auto rejecting =
      estimate_descriptors(lab_of(1, 3000, {{"mode", "iptables"}, {"preset", "1.6.5"}})).total;
  auto none =
      estimate_descriptors(lab_of(1, 3000, {{"mode", "iptables"}, {"preset", "1.24"}})).total;
  auto userspace = estimate_descriptors(lab_of(1, 3000, {{"mode", "userspace"}})).total;
  EXPECT_EQ(held - none, 3000u * descriptor_costs::per_held_node_port);
  EXPECT_EQ(rejecting, held);
  EXPECT_GT(userspace, held); // the same held ports, and the proxier's own sockets
}

TEST(descriptor_budget, bounded_clients_pay_per_connection_in_flight) {
  json closed = {{"name", "c"},
                 {"target_service", "ns/s0:http"},
                 {"arrival", "closed"},
                 {"concurrency", 1000}};
  auto open_loop = estimate_descriptors(lab_of(1, 1, preset_1_5)).total;
  auto iptables = estimate_descriptors(lab_of(1, 1, preset_1_5, closed)).total;
  auto userspace_open = estimate_descriptors(lab_of(1, 1, {{"mode", "userspace"}})).total;
  auto userspace = estimate_descriptors(lab_of(1, 1, {{"mode", "userspace"}}, closed)).total;
  EXPECT_EQ(iptables - open_loop, 1000u * descriptor_costs::per_connection);
  EXPECT_EQ(userspace - userspace_open, 1000u * (descriptor_costs::per_connection +
                                                 descriptor_costs::per_userspace_connection));
}

TEST(descriptor_budget, every_shipped_scenario_fits_the_limit_of_this_machine) {
  // The documented machine allows 20,000 (`ulimit -n`); leave room for what a test process has
  // open already.
  for (const auto& b : scenarios::builtin_scenarios()) {
    auto s = scenario::parse_scenario(std::string(b.json), "builtin:" + std::string(b.name));
    EXPECT_NO_THROW(check_descriptor_budget(s, 19000)) << b.name;
  }
}

} // namespace
} // namespace backlog_lab::runner
