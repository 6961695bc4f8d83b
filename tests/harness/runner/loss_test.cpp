// Packet loss on the clients' link (scenario `loss`): the nft rules as nft lists them in the
// node's namespace (the shipped loss-final-ack and its control are in runner_test.cpp).
#include <gtest/gtest.h>
#include <sstream>

#include "harness/lab/process.hpp"
#include "harness/lab/topology.hpp"
#include "harness/runner/packet_loss.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::runner {
namespace {

// A rule spelled as in a scenario file.
scenario::loss_spec rule(std::string_view direction, std::optional<uint16_t> port,
                         std::string_view flags, double share) {
  return {scenario::enum_from_name<scenario::loss_direction>(direction).value(), port,
          scenario::enum_from_name<scenario::tcp_flag_set>(flags).value(), share};
}

std::vector<scenario::loss_spec> sample_rules() {
  return {rule("to-node", 30080, "ack", 0.9),      rule("from-node", 30080, "syn-ack", 0.25),
          rule("to-node", std::nullopt, "syn", 1), rule("from-node", 31425, "any", 0),
          rule("to-node", 30720, "fin", 0.5),      rule("from-node", std::nullopt, "rst", 0.0001)};
}

// The rule lines of `nft list ruleset`, trimmed, without the chain headers.
std::vector<std::string> rule_lines(const std::string& listing) {
  std::vector<std::string> out;
  std::istringstream in(listing);
  for (std::string line; std::getline(in, line);) {
    auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    line = line.substr(start);
    if (line.find("drop comment") != std::string::npos) out.push_back(line);
  }
  return out;
}

TEST(loss, nft_lists_the_rules_in_the_node_namespace_as_the_scenario_asks) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!lab::have_program("nft")) GTEST_SKIP() << "needs nft";
  auto topo = lab::topology::build_nodeport({});
  install_loss(topo.node(), sample_rules(), lab::topology::node_link());
  // The oracle: what the kernel holds, as nft prints it back (its own spelling of the masks).
  std::string listing = testing::run_ok(topo.node(), {"nft", "list", "ruleset"});
  EXPECT_NE(listing.find("chain to_node {\n\t\ttype filter hook prerouting priority raw; "
                         "policy accept;"),
            std::string::npos)
      << listing;
  EXPECT_NE(listing.find("chain from_node {\n\t\ttype filter hook postrouting priority 300; "
                         "policy accept;"),
            std::string::npos)
      << listing;
  const std::string counter = " counter packets 0 bytes 0 drop comment ";
  std::vector<std::string> expected = {
      "iifname \"bl-node\" tcp dport 30080 tcp flags ack / fin,syn,rst,psh,ack numgen random mod "
      "10000 < 9000" +
          counter + "\"/loss/0\"",
      "iifname \"bl-node\" tcp flags syn / fin,syn,rst,ack" + counter + "\"/loss/2\"",
      "iifname \"bl-node\" tcp dport 30720 tcp flags & fin == fin numgen random mod 10000 < 5000" +
          counter + "\"/loss/4\"",
      "oifname \"bl-node\" tcp sport 30080 tcp flags syn,ack / fin,syn,rst,ack numgen random mod "
      "10000 < 2500" +
          counter + "\"/loss/1\"",
      "oifname \"bl-node\" tcp sport 31425 meta l4proto tcp numgen random mod 10000 < 0" + counter +
          "\"/loss/3\"",
      "oifname \"bl-node\" tcp flags & rst == rst numgen random mod 10000 < 1" + counter +
          "\"/loss/5\""};
  EXPECT_EQ(rule_lines(listing), expected) << listing;
  // Only the node's namespace has rules; the clients' has none.
  EXPECT_EQ(testing::run_ok(topo.clients(), {"nft", "list", "ruleset"}), "");
  auto dropped = loss_dropped(topo.node());
  EXPECT_EQ(dropped.size(), 6u);
  for (const auto& [index, packets] : dropped)
    EXPECT_EQ(packets, 0u) << index;
}

TEST(loss, nft_errors_name_the_namespace) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!lab::have_program("nft")) GTEST_SKIP() << "needs nft";
  auto topo = lab::topology::build_nodeport({});
  try {
    install_loss(topo.node(),
                 {{scenario::loss_direction::to_node, 1, scenario::tcp_flag_set::ack, 0.5}},
                 "bad\"link");
    FAIL() << "no error";
  } catch (const std::exception& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("nft -f (loss rules) in namespace"), std::string::npos) << msg;
  }
}

} // namespace
} // namespace backlog_lab::runner
