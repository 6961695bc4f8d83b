#pragma once
// Packet loss on the clients' link, by nftables in the node's namespace: the kernel here has no
// netem, so a share of matching packets is dropped with `numgen random` (docs/scenario-format.md).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "harness/lab/netns.hpp"
#include "harness/scenario/model.hpp"

namespace backlog_lab::runner {

/// The nftables table every loss rule lives in (family inet, in the node's namespace only).
inline constexpr const char* loss_table = "backlog_lab_loss";

/// The `nft -f` input for `rules` on the node's link `link` (chain to_node: prerouting at raw
/// priority, before conntrack and DNAT; chain from_node: postrouting after NAT). Rule i carries
/// the comment "/loss/i". Pure: no I/O.
std::string render_loss_ruleset(const std::vector<scenario::loss_spec>& rules,
                                const std::string& link);

/// Installs `rules` in `node` with `nft -f -`; throws lab_error with nft's message if it fails.
/// Does nothing for no rules. The table goes with the namespace.
void install_loss(const lab::netns& node, const std::vector<scenario::loss_spec>& rules,
                  const std::string& link);

/// Packets each rule dropped so far, by rule index, from its counter (`nft -j list table`).
std::map<std::size_t, uint64_t> loss_dropped(const lab::netns& node);

} // namespace backlog_lab::runner
