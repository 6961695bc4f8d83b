#include "harness/runner/packet_loss.hpp"

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"

namespace backlog_lab::runner {
namespace {

constexpr auto nft_timeout = std::chrono::seconds(10);
// numgen draws in [0, modulus): a share has four decimals; 1 needs no draw (nft rejects
// `< 10000` as out of range for mod 10000).
constexpr long modulus = 10000;

// The flag sets as masks over the flags that tell packets apart: "ack" is ACK alone (no SYN,
// FIN, RST or PSH), which is the handshake's final ACK and pure ACKs (and data segments that do
// not end a write; Linux sets PSH on those that do).
std::string flags_match(scenario::tcp_flag_set set) {
  using flags = scenario::tcp_flag_set;
  switch (set) {
  case flags::syn:
    return "tcp flags & (fin|syn|rst|ack) == syn";
  case flags::syn_ack:
    return "tcp flags & (fin|syn|rst|ack) == syn|ack";
  case flags::ack:
    return "tcp flags & (fin|syn|rst|psh|ack) == ack";
  case flags::fin:
    return "tcp flags & fin == fin";
  case flags::rst:
    return "tcp flags & rst == rst";
  case flags::any:
    break;
  }
  return "meta l4proto tcp";
}

} // namespace

std::string render_loss_ruleset(const std::vector<scenario::loss_spec>& rules,
                                const std::string& link) {
  std::string to_node, from_node;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const auto& r = rules[i];
    bool inbound = r.direction == scenario::loss_direction::to_node;
    std::string rule = std::string(inbound ? "iifname" : "oifname") + " \"" + link + "\"";
    if (r.port)
      rule += std::string(" tcp ") + (inbound ? "dport " : "sport ") + std::to_string(*r.port);
    rule += " " + flags_match(r.tcp_flags);
    long below = std::lround(r.share * modulus);
    if (below < modulus)
      rule += " numgen random mod " + std::to_string(modulus) + " < " + std::to_string(below);
    rule += " counter drop comment \"/loss/" + std::to_string(i) + "\"\n";
    (inbound ? to_node : from_node) += "    " + rule;
  }
  // raw (-300): before conntrack and DNAT, so a NodePort is matched as the client sent it and a
  // dropped packet leaves no trace; 300: after NAT restored the NodePort as the source.
  return std::string("table inet ") + loss_table + " {\n" +
         "  chain to_node {\n    type filter hook prerouting priority raw; policy accept;\n" +
         to_node + "  }\n" +
         "  chain from_node {\n    type filter hook postrouting priority 300; policy accept;\n" +
         from_node + "  }\n}\n";
}

void install_loss(const lab::netns& node, const std::vector<scenario::loss_spec>& rules,
                  const std::string& link) {
  if (rules.empty()) return;
  std::string text = render_loss_ruleset(rules, link);
  auto result = lab::run_command(&node, {"nft", "-f", "-"}, text, nft_timeout);
  if (result.exit_status != 0 || result.timed_out)
    throw lab_error("nft -f (loss rules) in namespace '" + node.name() + "' failed" +
                    (result.timed_out ? " (timed out)" : "") + ": " + result.err);
}

std::map<std::size_t, uint64_t> loss_dropped(const lab::netns& node) {
  auto result =
      lab::run_command(&node, {"nft", "-j", "list", "table", "inet", loss_table}, {}, nft_timeout);
  if (result.exit_status != 0 || result.timed_out)
    throw lab_error("nft -j list table inet " + std::string(loss_table) + " in namespace '" +
                    node.name() + "' failed: " + result.err);
  std::map<std::size_t, uint64_t> out;
  auto doc = nlohmann::json::parse(result.out, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nftables"))
    throw lab_error("nft -j list printed no nftables JSON: " + result.out.substr(0, 200));
  for (const auto& item : doc["nftables"]) {
    if (!item.contains("rule")) continue;
    const auto& rule = item["rule"];
    std::string comment = rule.value("comment", "");
    if (comment.rfind("/loss/", 0) != 0) continue;
    std::size_t index = std::stoul(comment.substr(6));
    for (const auto& e : rule.value("expr", nlohmann::json::array()))
      if (e.contains("counter")) out[index] = e["counter"].value("packets", uint64_t{0});
  }
  return out;
}

} // namespace backlog_lab::runner
