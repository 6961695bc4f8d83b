#include "proxy_sim/nftables/rules.hpp"

#include "harness/core/error.hpp"
#include "proxy_sim/iptables/rules.hpp"

namespace backlog_lab::proxy_sim::nftables {
namespace {

using scenario::proxy_preset;

// knftables.NameLengthMax (256) minus chainNamePrefixLengthMax (16).
constexpr std::size_t chain_name_base_max = 240;

// "namespace/name:port" -> {"namespace", "name", "port"} (port may be empty).
struct port_name {
  std::string ns, name, port;
};
port_name split_name(std::string_view s) {
  port_name p;
  auto slash = s.find('/');
  std::string_view rest = s;
  if (slash != std::string_view::npos) {
    p.ns = std::string(s.substr(0, slash));
    rest = s.substr(slash + 1);
  }
  auto colon = rest.rfind(':');
  p.name = std::string(rest.substr(0, colon));
  if (colon != std::string_view::npos) p.port = std::string(rest.substr(colon + 1));
  return p;
}

// 1.37 keeps the 1.33 table; what it adds (the localhost NodePort proxy) is no rule.
bool late_layout(proxy_preset v) {
  return v == proxy_preset::v1_33 || v == proxy_preset::v1_37;
}

// Collects one transaction in knftables' order and the table it leaves.
struct tx {
  sync_plan plan;
  std::set<std::string> created; // ensureChain's createdChains
  void line(const std::string& l) { plan.text += l + "\n"; }
  void add_chain(const std::string& chain, const std::string& spec = {}) {
    line("add chain " + std::string(table) + " " + chain +
         (spec.empty() ? "" : " { " + spec + " }"));
    line("flush chain " + std::string(table) + " " + chain);
    plan.chains[chain]; // listed, maybe empty
  }
  void ensure_chain(const std::string& chain) {
    if (!created.insert(chain).second) return;
    add_chain(chain);
  }
  void rule(const std::string& chain, const std::string& r) {
    line("add rule " + std::string(table) + " " + chain + " " + r);
    plan.chains[chain].push_back(r);
  }
  void element(const std::string& map, const std::string& key, const std::string& value = {},
               const std::string& comment = {}) {
    line("add element " + std::string(table) + " " + map + " { " + key +
         (comment.empty() ? "" : " comment \"" + comment + "\"") +
         (value.empty() ? "" : " : " + value) + " }");
    plan.elements[map].insert(key);
  }
};

struct base_chain {
  const char* name;
  const char* type;
  const char* hook;
  int priority;
};

// nftablesBaseChains. Priorities as numbers: knftables writes "dstnat-10", which Debian 12's
// nft 1.0.6 refuses for the input and forward hooks; dstnat is -100, srcnat 100.
std::vector<base_chain> base_chains(proxy_preset v) {
  std::vector<base_chain> c = {{"filter-prerouting", "filter", "prerouting", -110},
                               {"filter-input", "filter", "input", -110},
                               {"filter-forward", "filter", "forward", -110},
                               {"filter-output", "filter", "output", -110}};
  if (late_layout(v)) c.push_back({"filter-output-post-dnat", "filter", "output", -90});
  c.push_back({"nat-prerouting", "nat", "prerouting", -100});
  c.push_back({"nat-output", "nat", "output", -100});
  c.push_back({"nat-postrouting", "nat", "postrouting", 100});
  return c;
}

struct jump {
  const char* to;
  const char* from;
  const char* match;
};

// nftablesJumpChains.
std::vector<jump> jump_chains(proxy_preset v) {
  if (!late_layout(v))
    return {{"endpoints-check", "filter-input", "ct state new"},
            {"endpoints-check", "filter-forward", "ct state new"},
            {"endpoints-check", "filter-output", "ct state new"},
            {"firewall-check", "filter-prerouting", "ct state new"},
            {"firewall-check", "filter-output", "ct state new"},
            {"services", "nat-output", ""},
            {"services", "nat-prerouting", ""},
            {"masquerading", "nat-postrouting", ""}};
  return {{"nodeport-endpoints-check", "filter-input", "ct state new"},
          {"service-endpoints-check", "filter-input", "ct state new"},
          {"service-endpoints-check", "filter-forward", "ct state new"},
          {"service-endpoints-check", "filter-output", "ct state new"},
          {"firewall-check", "filter-prerouting", "ct state new"},
          {"firewall-check", "filter-output", "ct state new"},
          {"services", "nat-output", ""},
          {"services", "nat-prerouting", ""},
          {"masquerading", "nat-postrouting", ""},
          {"cluster-ips-check", "filter-forward", "ct state new"},
          {"cluster-ips-check", "filter-output-post-dnat", "ct state new"}};
}

const char* no_localhost = "ip daddr != 127.0.0.0/8";

// setupNFTables(), with --nodeport-addresses unset (MatchAll: no nodeport-ips set).
void setup(tx& t, const rule_options& o, bool first_sync) {
  const auto v = o.version;
  t.line("add table " + std::string(table) + " { comment \"rules for kube-proxy\" ; }");
  if (late_layout(v) && first_sync)
    for (const auto& bc : base_chains(v)) {
      t.line("add chain " + std::string(table) + " " + bc.name);
      t.line("delete chain " + std::string(table) + " " + bc.name);
    }
  for (const auto& bc : base_chains(v))
    t.add_chain(bc.name, std::string("type ") + bc.type + " hook " + bc.hook + " priority " +
                             std::to_string(bc.priority) + " ;");
  for (const auto& j : jump_chains(v)) {
    t.ensure_chain(j.to);
    t.rule(j.from, std::string(j.match) + (*j.match ? " " : "") + "jump " + j.to);
  }
  std::vector<std::string> top = {"services", "masquerading", "mark-for-masquerade"};
  if (late_layout(v)) top.insert(top.begin() + 1, "cluster-ips-check");
  for (const auto& c : top)
    t.ensure_chain(c);
  t.rule("mark-for-masquerade", "mark set mark or " + o.masquerade_mark);
  t.rule("masquerading", "mark and " + o.masquerade_mark + " == 0 return");
  t.rule("masquerading", "mark set mark xor " + o.masquerade_mark);
  t.rule("masquerading", "masquerade fully-random");
  if (late_layout(v)) {
    t.line("add set " + std::string(table) +
           " cluster-ips { type ipv4_addr ; comment \"Active ClusterIPs\" ; }");
    t.rule("cluster-ips-check", "ip daddr @cluster-ips reject");
  }
  t.line("add set " + std::string(table) +
         " nodeport-ips { type ipv4_addr ; comment \"IPs that accept NodePort traffic\" ; }");
  t.line("delete set " + std::string(table) + " nodeport-ips");
  t.line("add map " + std::string(table) +
         " no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; "
         "comment \"vmap to drop or reject packets to services with no endpoints\" ; }");
  t.line("add map " + std::string(table) +
         " no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment \"vmap to "
         "drop or reject packets to service nodeports with no endpoints\" ; }");
  t.add_chain("reject-chain",
              "comment \"helper for @no-endpoint-services / @no-endpoint-nodeports\" ;");
  t.rule("reject-chain", "reject");
  if (late_layout(v)) {
    t.rule("service-endpoints-check",
           "ip daddr . meta l4proto . th dport vmap @no-endpoint-services");
    t.rule("nodeport-endpoints-check",
           std::string(no_localhost) + " meta l4proto . th dport vmap @no-endpoint-nodeports");
  } else {
    t.rule("endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services");
    t.rule("endpoints-check", std::string("fib daddr type local ") + no_localhost +
                                  " meta l4proto . th dport vmap @no-endpoint-nodeports");
  }
  t.line("add map " + std::string(table) +
         " firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "
         "\"destinations that are subject to LoadBalancerSourceRanges\" ; }");
  t.ensure_chain("firewall-check");
  t.rule("firewall-check", "ip daddr . meta l4proto . th dport vmap @firewall-ips");
  t.line("add map " + std::string(table) +
         " service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "
         "\"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }");
  t.line("add map " + std::string(table) +
         " service-nodeports { type inet_proto . inet_service : verdict ; comment \"NodePort "
         "traffic\" ; }");
  t.rule("services", "ip daddr . meta l4proto . th dport vmap @service-ips");
  t.rule("services", std::string("fib daddr type local ") + no_localhost +
                         " meta l4proto . th dport vmap @service-nodeports");
  // "We currently fully-rebuild our sets and maps on each resync."
  std::vector<std::string> maps = {"firewall-ips", "no-endpoint-services", "no-endpoint-nodeports",
                                   "service-ips", "service-nodeports"};
  if (late_layout(v)) maps.insert(maps.begin(), "cluster-ips");
  for (const auto& m : maps) {
    t.line(std::string(m == "cluster-ips" ? "flush set " : "flush map ") + std::string(table) +
           " " + m);
    t.plan.elements[m];
  }
}

std::string endpoint_text(const tcp::endpoint& ep) {
  return iptables::endpoint_string(ep);
}

// writeServiceToEndpointRules.
void service_to_endpoints(tx& t, const rule_options& o, const std::string& chain,
                          const std::string& name, const std::vector<tcp::endpoint>& eps) {
  if (o.client_ip_affinity)
    for (const auto& ep : eps) {
      auto base = endpoint_chain_base(name, ep);
      t.rule(chain, "ip saddr @affinity-" + base + " goto endpoint-" + base);
    }
  std::string vmap;
  for (std::size_t i = 0; i < eps.size(); ++i)
    vmap += (i ? ", " : "") + std::to_string(i) + " : goto endpoint-" +
            endpoint_chain_base(name, eps[i]);
  t.rule(chain, "numgen random mod " + std::to_string(eps.size()) + " vmap { " + vmap + " }");
}

// One service port's part of syncProxyRules() (protocol tcp, no ExternalIPs, no LB VIPs: the
// lab's LoadBalancer Services are reached through their NodePort).
void render_service(tx& t, const service_endpoints& s, const rule_options& o,
                    std::set<std::string>& active_chains, std::set<std::string>& active_sets) {
  const std::string base = service_chain_base(s.service);
  std::vector<tcp::endpoint> all = s.endpoints;
  all.insert(all.end(), s.other_node_endpoints.begin(), s.other_node_endpoints.end());
  const bool local_policy = s.external_policy_local;
  const bool has_endpoints = !all.empty();
  const auto& local = s.endpoints;

  auto ensure = [&](const std::string& c) {
    t.ensure_chain(c);
    active_chains.insert(c);
  };
  for (const auto& ep : all)
    ensure("endpoint-" + endpoint_chain_base(s.service, ep));
  const std::string cluster_chain = "service-" + base;
  const std::string local_chain = "local-" + base;
  const std::string external_chain = "external-" + base;
  // UsesClusterEndpoints: internal traffic policy is always Cluster here.
  const bool uses_cluster = has_endpoints;
  if (uses_cluster) ensure(cluster_chain);
  const bool uses_local = local_policy && !local.empty();
  if (uses_local) ensure(local_chain);
  const bool has_external = local_policy ? !local.empty() : has_endpoints;
  const bool externally_accessible = s.node_port != 0;
  const bool uses_external = has_endpoints && externally_accessible;
  if (uses_external) ensure(external_chain);

  std::string internal_verdict, external_verdict;
  if (!has_endpoints)
    internal_verdict = external_verdict = "goto reject-chain";
  else if (!has_external)
    external_verdict = "drop";

  const std::string port = std::to_string(s.port);
  if (!s.cluster_ip.empty()) {
    if (late_layout(o.version)) t.element("cluster-ips", s.cluster_ip);
    const std::string key = s.cluster_ip + " . tcp . " + port;
    if (has_endpoints)
      t.element("service-ips", key, "goto " + cluster_chain);
    else
      t.element("no-endpoint-services", key, internal_verdict, s.service);
  }
  if (s.node_port != 0) {
    const std::string key = "tcp . " + std::to_string(s.node_port);
    if (has_endpoints) t.element("service-nodeports", key, "goto " + external_chain);
    if (!has_external) t.element("no-endpoint-nodeports", key, external_verdict, s.service);
  }
  if (has_endpoints && !s.cluster_ip.empty() && o.masquerade_all)
    t.rule(cluster_chain,
           "ip daddr " + s.cluster_ip + " tcp dport " + port + " jump mark-for-masquerade");
  if (uses_external) {
    if (!local_policy) {
      t.rule(external_chain, "jump mark-for-masquerade");
    } else {
      // No local-traffic detector configured: no "short-circuit pod traffic" rule.
      t.rule(external_chain,
             "fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"");
      t.rule(external_chain, "fib saddr type local goto " + cluster_chain +
                                 " comment \"short-circuit local traffic\"");
    }
    if (has_external)
      t.rule(external_chain, "goto " + (local_policy ? local_chain : cluster_chain));
  }
  if (o.client_ip_affinity)
    for (const auto& ep : all) {
      const std::string set = "affinity-" + endpoint_chain_base(s.service, ep);
      t.line("add set " + std::string(table) + " " + set +
             " { type ipv4_addr ; flags dynamic,timeout ; timeout " +
             std::to_string(o.affinity_timeout_s) + "s ; }");
      active_sets.insert(set);
    }
  if (uses_cluster) service_to_endpoints(t, o, cluster_chain, s.service, all);
  if (uses_local) service_to_endpoints(t, o, local_chain, s.service, local);
  for (const auto& ep : all) {
    const std::string chain = "endpoint-" + endpoint_chain_base(s.service, ep);
    t.rule(chain, "ip saddr " + ep.address().to_string() + " jump mark-for-masquerade");
    if (o.client_ip_affinity)
      t.rule(chain, "update @affinity-" + endpoint_chain_base(s.service, ep) + " { ip saddr }");
    t.rule(chain, "meta l4proto tcp dnat to " + endpoint_text(ep));
  }
}

} // namespace

std::string hash_and_truncate(std::string_view name) {
  std::string out = iptables::chain_hash(name).substr(0, 8) + "-" + std::string(name);
  if (out.size() > chain_name_base_max) out = out.substr(0, chain_name_base_max - 3) + "...";
  return out;
}

std::string service_chain_base(std::string_view service_port_name) {
  auto p = split_name(service_port_name);
  return hash_and_truncate(p.ns + "/" + p.name + "/tcp/" + p.port);
}

std::string endpoint_chain_base(std::string_view service_port_name, const tcp::endpoint& ep) {
  auto p = split_name(service_port_name);
  std::string ip = ep.address().to_string();
  for (char& c : ip)
    if (c == ':') c = '.';
  return hash_and_truncate(p.ns + "/" + p.name + "/tcp/" + p.port + "__" + ip + "/" +
                           std::to_string(ep.port()));
}

rule_options make_rule_options(const scenario::proxy_spec& spec) {
  rule_options o;
  if (spec.preset != proxy_preset::v1_29 && spec.preset != proxy_preset::v1_33 &&
      spec.preset != proxy_preset::v1_37)
    throw input_error("/proxy/preset", "\"1.29\", \"1.33\" or \"1.37\" for mode \"nftables\"");
  o.version = spec.preset;
  o.masquerade_all = spec.masquerade_all;
  o.client_ip_affinity = spec.session_affinity == scenario::session_affinity::client_ip;
  o.affinity_timeout_s = spec.affinity_timeout_s;
  return o;
}

sync_plan render_sync(const std::vector<service_endpoints>& services, const rule_options& options,
                      const std::set<std::string>& installed_service_chains,
                      const std::set<std::string>& installed_affinity_sets, bool first_sync) {
  tx t;
  setup(t, options, first_sync);
  std::set<std::string> active_chains, active_sets;
  for (const auto& s : services)
    render_service(t, s, options, active_chains, active_sets);
  // Stale chains are flushed now and deleted later: a kernel before 6.2 may still see a
  // reference from the map element deleted in the same transaction.
  for (const auto& c : installed_service_chains)
    if (!active_chains.count(c)) {
      t.line("flush chain " + std::string(table) + " " + c);
      t.plan.chains[c];
    }
  for (const auto& s : installed_affinity_sets)
    if (!active_sets.count(s)) t.line("delete set " + std::string(table) + " " + s);
  t.plan.service_chains = std::move(active_chains);
  t.plan.affinity_sets = std::move(active_sets);
  return std::move(t.plan);
}

std::string render_stale_chain_deletion(const std::set<std::string>& chains) {
  std::string text;
  for (const auto& c : chains)
    text += "delete chain " + std::string(table) + " " + c + "\n";
  return text;
}

std::string render_teardown() {
  return "add table " + std::string(table) + "\ndelete table " + std::string(table) + "\n";
}

} // namespace backlog_lab::proxy_sim::nftables
