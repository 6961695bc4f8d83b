#pragma once
// kube-proxy's iptables-mode rules as text: chain names, balancing probabilities and the
// iptables-restore input of one sync. Pure functions, no kernel (docs/proxy-iptables.md).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "harness/scenario/model.hpp"
#include "proxy_sim/node_port.hpp"
#include "proxy_sim/proxier.hpp"

namespace backlog_lab::proxy_sim::iptables {

/// kube-proxy's chain-name hash: the first 16 characters of base32(sha256(text)).
std::string chain_hash(std::string_view text);

/// `servicePortChainName`: "KUBE-SVC-" + chain_hash(service_port_name + protocol).
std::string service_chain_name(std::string_view service_port_name,
                               std::string_view protocol = "tcp");

/// `servicePortEndpointChainName`: "KUBE-SEP-" + chain_hash(name + protocol + endpoint).
std::string endpoint_chain_name(std::string_view service_port_name, std::string_view protocol,
                                std::string_view endpoint);

/// An endpoint as kube-proxy spelled it (Go's net.JoinHostPort): "10.0.0.1:80", "[::1]:80".
std::string endpoint_string(const tcp::endpoint& endpoint);

/// The `--probability` text of balancing rule `i` (0-based) of `n`: `%0.5f` of 1/(n-i).
std::string probability_text(std::size_t i, std::size_t n);

/// Which kube-proxy release's behaviour to reproduce (the scenario's /proxy/preset).
using preset = scenario::proxy_preset;

/// Whether the release held every NodePort with a listening socket (all before 1.24).
bool holds_node_ports(preset version);

/// The shape of a held NodePort socket in that release: dual stack (`*:N`) or IPv4 (`0.0.0.0:N`).
node_port_socket held_socket_shape(preset version);

/// What shapes the rules besides the services.
struct rule_options {
  preset version = preset::v1_5;
  bool masquerade_all = false;     ///< --masquerade-all: KUBE-MARK-MASQ for ClusterIP traffic
  bool client_ip_affinity = false; ///< sessionAffinity ClientIP: `-m recent` rules
  uint32_t affinity_timeout_s = 10800;
  /// kubelet's KUBE-MARK-DROP (nat) and KUBE-FIREWALL (filter, from INPUT and OUTPUT), which a
  /// 1.5/1.6 KUBE-XLB chain without local endpoints jumps to.
  bool mark_drop_chains = false;
};

/// Reads the rule-related fields of a proxy spec; throws input_error naming the field.
/// `services` decide whether kubelet's drop chains are needed (a Local policy before 1.24).
rule_options make_rule_options(const scenario::proxy_spec& spec,
                               const std::vector<service_endpoints>& services = {});

/// Checks what the rules need from the services (names fit in a comment, IPv4 endpoints and
/// ClusterIPs, distinct NodePorts); throws input_error("/services", ...).
void validate_services(const std::vector<service_endpoints>& services);

/// One sync's iptables-restore input and the chains it leaves installed.
struct restore_plan {
  std::string text;                    ///< input for `iptables-restore --noflush`
  std::set<std::string> nat_chains;    ///< every nat chain of ours after this sync
  std::set<std::string> filter_chains; ///< every filter chain of ours after this sync
};

/// Renders a full sync as syncProxyRules() wrote it: every chain of ours is declared (which
/// flushes it under --noflush) and refilled; KUBE-SVC/KUBE-SEP chains in `installed_nat_chains`
/// that are no longer needed are deleted. `link_builtin_chains` adds the jumps from the
/// built-in chains (PREROUTING, OUTPUT, POSTROUTING, INPUT, ...): only on the first sync, since
/// --noflush appends them again each time.
restore_plan render_sync(const std::vector<service_endpoints>& services,
                         const rule_options& options,
                         const std::set<std::string>& installed_nat_chains = {},
                         bool link_builtin_chains = true);

/// The text iptables-restore is given for `rendered` (a render_sync or render_teardown text): the
/// same commands, with a chain-less `-S` after each table's `-I` lines, before its other commands.
/// iptables-nft 1.8.9 (Debian 12) under --noflush keeps the chains a restore names in a sorted list
/// that every rule's chain and jump target are inserted into with strcmp: O(rules x chains), 15 s
/// for 10,000 Services with one endpoint each. A command without a chain makes it fetch the whole
/// table once instead (~2-3 s); `-S` only lists the table as it stood, on stdout
/// (docs/proxy-iptables.md#sync-cost).
std::string restore_input(const std::string& rendered);

/// Renders the removal of what `installed` put in place: jumps (if `linked`), rules, chains.
std::string render_teardown(const restore_plan& installed, const rule_options& options,
                            bool linked);

} // namespace backlog_lab::proxy_sim::iptables
