#pragma once
// kube-proxy's nftables-mode rules as text: chain names and the `nft -f` transaction of one
// sync, table `ip kube-proxy`. Pure functions, no kernel (docs/proxy-nftables.md).
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "harness/scenario/model.hpp"
#include "proxy_sim/proxier.hpp"

namespace backlog_lab::proxy_sim::nftables {

/// kube-proxy's table: family ip, name kube-proxy.
inline constexpr std::string_view table = "ip kube-proxy";

/// `hashAndTruncate`: the first 8 characters of base32(sha256(name)), "-", name (<= 240 chars).
std::string hash_and_truncate(std::string_view name);

/// `servicePortChainNameBase`: "HASH-namespace/name/tcp/port" for "namespace/name:port".
std::string service_chain_base(std::string_view service_port_name);

/// `servicePortEndpointChainNameBase`: "HASH-namespace/name/tcp/port__IP/PORT".
std::string endpoint_chain_base(std::string_view service_port_name, const tcp::endpoint& endpoint);

/// What shapes the rules besides the services.
struct rule_options {
  scenario::proxy_preset version = scenario::proxy_preset::v1_33;
  bool masquerade_all = false;
  bool client_ip_affinity = false;
  uint32_t affinity_timeout_s = 10800;
  std::string masquerade_mark = "0x004000"; ///< `%#08x` of 1 << --iptables-masquerade-bit (14)
};

/// Reads the rule-related fields of a proxy spec; throws input_error naming the field.
rule_options make_rule_options(const scenario::proxy_spec& spec);

/// One sync's `nft -f` input and what it leaves in the table.
struct sync_plan {
  std::string text;                                       ///< one transaction
  std::map<std::string, std::vector<std::string>> chains; ///< every chain: its rules, in order
  std::map<std::string, std::set<std::string>> elements;  ///< map/set name: element keys
  std::set<std::string> service_chains;                   ///< per-service/endpoint chains
  std::set<std::string> affinity_sets;                    ///< affinity-* sets
};

/// Renders a full sync as syncProxyRules() wrote it: the table, base chains and top-level
/// chains added and flushed, every map flushed and refilled, per-service chains added and
/// flushed. Chains in `installed_service_chains` no longer needed are flushed (deleted by a
/// later sync: render_stale_chain_deletion); affinity sets no longer needed are deleted.
/// `first_sync`: 1.33 adds and deletes its base chains once so that changed hooks apply.
sync_plan render_sync(const std::vector<service_endpoints>& services, const rule_options& options,
                      const std::set<std::string>& installed_service_chains = {},
                      const std::set<std::string>& installed_affinity_sets = {},
                      bool first_sync = true);

/// The transaction deleting stale chains (kube-proxy does it a second after they were flushed).
std::string render_stale_chain_deletion(const std::set<std::string>& chains);

/// CleanupLeftovers: the table deleted (added first, so that deleting never fails).
std::string render_teardown();

} // namespace backlog_lab::proxy_sim::nftables
