#include "proxy_sim/iptables/rules.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <openssl/evp.h>
#include <stdexcept>

#include "harness/core/error.hpp"

namespace backlog_lab::proxy_sim::iptables {
namespace {

// Chain names and comment texts exactly as kube-proxy wrote them.
constexpr std::string_view services_chain = "KUBE-SERVICES";
constexpr std::string_view external_services_chain = "KUBE-EXTERNAL-SERVICES";
constexpr std::string_view node_ports_chain = "KUBE-NODEPORTS";
constexpr std::string_view postrouting_chain = "KUBE-POSTROUTING";
constexpr std::string_view mark_masq_chain = "KUBE-MARK-MASQ";
// kubelet's, not kube-proxy's: the lab's node has no kubelet, so the proxier writes them when a
// Service needs them (pkg/kubelet/kubelet_network.go, 0x8000 = --iptables-drop-bit 15).
constexpr std::string_view mark_drop_chain = "KUBE-MARK-DROP";
constexpr std::string_view firewall_chain = "KUBE-FIREWALL";
constexpr std::string_view firewall_comment = "kubernetes firewall for dropping marked packets";
constexpr std::string_view drop_mark = "0x8000/0x8000";
constexpr std::string_view portals_comment = "kubernetes service portals";
constexpr std::string_view external_portals_comment =
    "kubernetes externally-visible service portals";
constexpr std::string_view postrouting_comment = "kubernetes postrouting rules";
constexpr std::string_view snat_comment = "kubernetes service traffic requiring SNAT";
constexpr std::string_view node_ports_comment =
    "kubernetes service nodeports; NOTE: this must be the last rule in this chain";
constexpr std::string_view masq_mark = "0x4000/0x4000";

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

std::string comment(std::string_view text) {
  return "-m comment --comment " + quoted(text);
}

// RFC 4648 base32 with padding, as Go's base32.StdEncoding.
std::string base32(const unsigned char* data, std::size_t size) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < size; ++i) {
    buffer = (buffer << 8) | data[i];
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
  while (out.size() % 8 != 0)
    out += '=';
  return out;
}

// The jumps from built-in chains, as "CHAIN rule-spec"; kube-proxy prepended them.
std::vector<std::string> nat_jumps() {
  return {"PREROUTING " + comment(portals_comment) + " -j " + std::string(services_chain),
          "OUTPUT " + comment(portals_comment) + " -j " + std::string(services_chain),
          "POSTROUTING " + comment(postrouting_comment) + " -j " + std::string(postrouting_chain)};
}

// 1.10 (#56164) on: NodePort REJECTs in filter KUBE-EXTERNAL-SERVICES, and a Service without
// endpoints gets no nat jumps at all.
bool external_services_layout(preset version) {
  return version == preset::v1_20 || version == preset::v1_24;
}

// The later proxier's KUBE-EXT/KUBE-SVL chains and filter DROP for externalTrafficPolicy Local,
// instead of KUBE-XLB and kubelet's KUBE-MARK-DROP.
bool ext_chain_layout(preset version) {
  return version == preset::v1_24;
}

std::vector<std::string> filter_jumps(const rule_options& options) {
  std::string to_services = comment(portals_comment) + " -j " + std::string(services_chain);
  std::vector<std::string> jumps;
  if (options.mark_drop_chains) // kubelet prepended these to INPUT and OUTPUT
    for (const char* chain : {"INPUT", "OUTPUT"})
      jumps.push_back(std::string(chain) + " -j " + std::string(firewall_chain));
  auto with = [&](std::vector<std::string> more) {
    jumps.insert(jumps.end(), more.begin(), more.end());
    return jumps;
  };
  switch (options.version) {
  case preset::v1_5: // filter KUBE-SERVICES (ClusterIP REJECTs) was linked from OUTPUT only
    return with({"OUTPUT " + to_services});
  case preset::v1_6_5: // #43972: "applies to both INPUT and OUTPUT chains"
    return with({"INPUT " + to_services, "OUTPUT " + to_services});
  case preset::v1_20:
  case preset::v1_24: // #56164 (1.10) and #60306: external REJECTs in their own chain, NEW only
    return with({"INPUT -m conntrack --ctstate NEW " + comment(external_portals_comment) + " -j " +
                     std::string(external_services_chain),
                 "FORWARD -m conntrack --ctstate NEW " + to_services,
                 "OUTPUT -m conntrack --ctstate NEW " + to_services});
  case preset::v1_29: // nftables mode's presets: the reader refuses them for iptables mode
  case preset::v1_33:
  case preset::v1_37:
    break;
  }
  return jumps;
}

std::set<std::string> base_filter_chains(const rule_options& options) {
  std::set<std::string> chains{std::string(services_chain)};
  if (external_services_layout(options.version))
    chains.insert(std::string(external_services_chain));
  if (options.mark_drop_chains) chains.insert(std::string(firewall_chain));
  return chains;
}

bool is_service_chain(const std::string& chain) {
  for (std::string_view prefix : {"KUBE-SVC-", "KUBE-SEP-", "KUBE-XLB-", "KUBE-EXT-", "KUBE-SVL-"})
    if (chain.rfind(prefix, 0) == 0) return true;
  return false;
}

// Table text in iptables-restore order: declarations, then rules, then deletions.
struct table_text {
  std::vector<std::string> chains;
  std::vector<std::string> rules;
  std::vector<std::string> deletions;

  void declare(std::string_view chain) { chains.push_back(":" + std::string(chain) + " - [0:0]"); }
  void add(std::string_view chain, const std::string& spec) {
    rules.push_back("-A " + std::string(chain) + " " + spec);
  }
  std::string render(std::string_view table) const {
    // Sized once: at 10,000 Services this is ~80,000 lines (docs/proxy-iptables.md#sync-cost).
    std::size_t size = table.size() + 9;
    for (const auto* lines : {&chains, &rules, &deletions})
      for (const auto& line : *lines)
        size += line.size() + 1;
    std::string out;
    out.reserve(size);
    out.append("*").append(table).append("\n");
    for (const auto* lines : {&chains, &rules, &deletions})
      for (const auto& line : *lines)
        out.append(line).push_back('\n');
    return out.append("COMMIT\n");
  }
};

std::string cluster_ip_match(const service_endpoints& s, std::string_view text) {
  return "-d " + s.cluster_ip + "/32 -p tcp " + comment(text) + " -m tcp --dport " +
         std::to_string(s.port);
}

// Balancing rules in `chain` over `seps`: rule i of n matches with %0.5f of 1/(n-i), the last
// always. `comment_of(i)` is the rule's comment text.
template <class Comment>
void write_balancing(table_text& nat, const std::string& chain,
                     const std::vector<std::string>& seps, Comment comment_of) {
  const std::size_t n = seps.size();
  for (std::size_t i = 0; i < n; ++i) {
    std::string spec = comment(comment_of(i));
    if (i + 1 < n) spec += " -m statistic --mode random --probability " + probability_text(i, n);
    nat.add(chain, spec + " -j " + seps[i]);
  }
}

void write_service(const service_endpoints& s, const rule_options& options, table_text& nat,
                   table_text& filter, std::set<std::string>& nat_chains) {
  const std::string svc_chain = service_chain_name(s.service);
  // This node's endpoints first, then other nodes': the Service's rules balance over all of
  // them, a Local policy's NodePort only over this node's.
  std::vector<tcp::endpoint> all = s.endpoints;
  all.insert(all.end(), s.other_node_endpoints.begin(), s.other_node_endpoints.end());
  const bool has_endpoints = !all.empty();
  const bool has_local_endpoints = !s.endpoints.empty();
  // 1.5 and 1.6 always wrote the ClusterIP and NodePort jumps; later releases only with
  // endpoints (else the filter REJECT alone speaks for the service).
  const bool write_jumps = has_endpoints || !external_services_layout(options.version);
  if (write_jumps) {
    nat.declare(svc_chain);
    nat_chains.insert(svc_chain);
  }
  // externalTrafficPolicy Local: NodePort traffic goes through the service's KUBE-XLB chain
  // (up to 1.23; 1.5/1.6 declared it whenever the policy is Local, 1.20 with the NodePort jump
  // only while the Service has endpoints) or KUBE-EXT chain (later proxier, with endpoints).
  std::string external_chain;
  if (s.external_policy_local && write_jumps)
    external_chain = (ext_chain_layout(options.version) ? "KUBE-EXT-" : "KUBE-XLB-") +
                     chain_hash(s.service + "tcp");
  if (!external_chain.empty()) {
    nat.declare(external_chain);
    nat_chains.insert(external_chain);
  }

  if (!s.cluster_ip.empty()) {
    if (write_jumps) {
      std::string match = cluster_ip_match(s, s.service + " cluster IP");
      if (options.masquerade_all)
        nat.add(services_chain, match + " -j " + std::string(mark_masq_chain));
      nat.add(services_chain, match + " -j " + svc_chain);
    }
    if (!has_endpoints)
      filter.add(services_chain, cluster_ip_match(s, s.service + " has no endpoints") +
                                     " -j REJECT --reject-with icmp-port-unreachable");
  }

  if (s.node_port != 0) {
    std::string match =
        "-p tcp " + comment(s.service) + " -m tcp --dport " + std::to_string(s.node_port);
    if (write_jumps && !s.external_policy_local) {
      nat.add(node_ports_chain, match + " -j " + std::string(mark_masq_chain));
      nat.add(node_ports_chain, match + " -j " + svc_chain);
    } else if (!external_chain.empty()) {
      // Local keeps the client's address: no KUBE-MARK-MASQ.
      nat.add(node_ports_chain, match + " -j " + external_chain);
    }
    const std::string_view filter_chain =
        external_services_layout(options.version) ? external_services_chain : services_chain;
    const std::string node_port_match =
        " -m addrtype --dst-type LOCAL -m tcp --dport " + std::to_string(s.node_port);
    // #43415 (1.6.0) added this REJECT; 1.5 had none, which is the incident.
    if (!has_endpoints && options.version != preset::v1_5)
      filter.add(filter_chain, "-p tcp " + comment(s.service + " has no endpoints") +
                                   node_port_match +
                                   " -j REJECT --reject-with icmp-port-unreachable");
    // The later proxier drops in filter what has no local endpoint to go to.
    if (ext_chain_layout(options.version) && s.external_policy_local && has_endpoints &&
        !has_local_endpoints)
      filter.add(filter_chain, "-p tcp " + comment(s.service + " has no local endpoints") +
                                   node_port_match + " -j DROP");
  }

  // Endpoint chains: a service without endpoints keeps an empty KUBE-SVC chain (1.5, 1.6), so
  // its NodePort packets leave nat un-DNATed and meet the local socket or the filter REJECT.
  std::vector<std::string> sep_chains;
  for (const auto& ep : all) {
    sep_chains.push_back(endpoint_chain_name(s.service, "tcp", endpoint_string(ep)));
    nat.declare(sep_chains.back());
    nat_chains.insert(sep_chains.back());
  }
  const std::string recent_mask = " --mask 255.255.255.255 --rsource";
  // ClientIP affinity: before a chain's balancing rules, one `recent --rcheck` rule per endpoint
  // it balances over (the Service's chain over all, KUBE-XLB / KUBE-SVL over the local ones).
  auto write_affinity = [&](const std::string& chain, const std::vector<std::string>& seps) {
    if (!options.client_ip_affinity) return;
    for (const auto& sep : seps)
      nat.add(chain, comment(s.service) + " -m recent --rcheck --seconds " +
                         std::to_string(options.affinity_timeout_s) + " --reap --name " + sep +
                         recent_mask + " -j " + sep);
  };
  write_affinity(svc_chain, sep_chains);
  write_balancing(nat, svc_chain, sep_chains, [&](std::size_t) { return s.service; });
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& ep = all[i];
    // Hairpin: a pod reaching itself through the service must be masqueraded.
    nat.add(sep_chains[i], "-s " + ep.address().to_string() + "/32 " + comment(s.service) + " -j " +
                               std::string(mark_masq_chain));
    std::string affinity = options.client_ip_affinity
                               ? " -m recent --set --name " + sep_chains[i] + recent_mask
                               : std::string();
    nat.add(sep_chains[i], "-p tcp " + comment(s.service) + affinity +
                               " -m tcp -j DNAT --to-destination " + endpoint_string(ep));
  }
  if (external_chain.empty() || !has_endpoints) return; // 1.5/1.6: `continue`, XLB left empty

  const std::vector<std::string> local_seps(sep_chains.begin(),
                                            sep_chains.begin() + s.endpoints.size());
  if (!ext_chain_layout(options.version)) {
    // pkg/proxy/iptables/proxier.go (1.5-era): "Blackhole all traffic since there are no local
    // endpoints", through kubelet's KUBE-MARK-DROP and KUBE-FIREWALL.
    if (local_seps.empty())
      nat.add(external_chain, comment(s.service + " has no local endpoints") + " -j " +
                                  std::string(mark_drop_chain));
    write_affinity(external_chain, local_seps);
    write_balancing(nat, external_chain, local_seps, [&](std::size_t i) {
      return "Balancing rule " + std::to_string(i) + " for " + s.service;
    });
    return;
  }
  // Later proxier: the node's own traffic goes the cluster-wide way; the rest to this node's
  // endpoints (KUBE-SVL), or nowhere: the filter DROP above takes it.
  nat.add(external_chain,
          comment("masquerade LOCAL traffic for " + s.service + " external destinations") +
              " -m addrtype --src-type LOCAL -j " + std::string(mark_masq_chain));
  nat.add(external_chain,
          comment("route LOCAL traffic for " + s.service + " external destinations") +
              " -m addrtype --src-type LOCAL -j " + svc_chain);
  if (local_seps.empty()) return;
  const std::string local_chain = "KUBE-SVL-" + chain_hash(s.service + "tcp");
  nat.declare(local_chain);
  nat_chains.insert(local_chain);
  nat.add(external_chain, "-j " + local_chain);
  write_affinity(local_chain, local_seps);
  write_balancing(nat, local_chain, local_seps, [&](std::size_t) { return s.service; });
}

} // namespace

std::string chain_hash(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1)
    throw lab_error("OpenSSL EVP_Digest(sha256) failed");
  return base32(digest.data(), size).substr(0, 16);
}

std::string service_chain_name(std::string_view service_port_name, std::string_view protocol) {
  return "KUBE-SVC-" + chain_hash(std::string(service_port_name) + std::string(protocol));
}

std::string endpoint_chain_name(std::string_view service_port_name, std::string_view protocol,
                                std::string_view endpoint) {
  return "KUBE-SEP-" +
         chain_hash(std::string(service_port_name) + std::string(protocol) + std::string(endpoint));
}

std::string endpoint_string(const tcp::endpoint& endpoint) {
  std::string host = endpoint.address().to_string();
  if (endpoint.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

std::string probability_text(std::size_t i, std::size_t n) {
  if (i >= n) throw std::out_of_range("probability_text: rule index beyond endpoint count");
  char text[32];
  std::snprintf(text, sizeof text, "%0.5f", 1.0 / static_cast<double>(n - i));
  return text;
}

bool holds_node_ports(preset version) {
  return version != preset::v1_24;
}

node_port_socket held_socket_shape(preset version) {
  // 1.5/1.6: LocalPort without a family, net.Listen("tcp", ":N"). 1.20: LocalPort.IPFamily set
  // from the ClusterIP's family, net.Listen("tcp4", ":N") (docs/proxy-iptables.md#port-holding).
  return version == preset::v1_20 ? node_port_socket::ipv4 : node_port_socket::dual_stack;
}

rule_options make_rule_options(const scenario::proxy_spec& spec,
                               const std::vector<service_endpoints>& services) {
  rule_options options;
  options.version = spec.preset;
  options.masquerade_all = spec.masquerade_all;
  options.client_ip_affinity = spec.session_affinity == scenario::session_affinity::client_ip;
  // Kubernetes validates timeoutSeconds to 1..86400.
  if (spec.affinity_timeout_s == 0 || spec.affinity_timeout_s > 86400)
    throw input_error("/proxy/affinity_timeout_s", "seconds in 1..86400");
  options.affinity_timeout_s = spec.affinity_timeout_s;
  options.mark_drop_chains =
      !ext_chain_layout(spec.preset) &&
      std::any_of(services.begin(), services.end(),
                  [](const service_endpoints& s) { return s.external_policy_local; });
  return options;
}

void validate_services(const std::vector<service_endpoints>& services) {
  std::set<uint16_t> node_ports;
  for (const auto& s : services) {
    // The name goes into a quoted iptables comment (256 bytes at most in xt_comment).
    bool plain = !s.service.empty() && s.service.size() < 200;
    for (char c : s.service)
      plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == ':' ||
                        c == '-' || c == '.' || c == '_');
    if (!plain)
      throw input_error("/services", "a service name like \"namespace/name:port\" (letters, "
                                     "digits, / : - . _); got \"" +
                                         s.service + "\"");
    if (s.node_port != 0 && !node_ports.insert(s.node_port).second)
      throw input_error("/services", "distinct node_port values; " + std::to_string(s.node_port) +
                                         " is used twice");
    if (!s.cluster_ip.empty()) {
      boost::system::error_code ec;
      net::ip::make_address_v4(s.cluster_ip, ec);
      if (ec)
        throw input_error("/services", "an IPv4 cluster_ip for \"" + s.service + "\"; got \"" +
                                           s.cluster_ip + "\"");
    }
    std::set<tcp::endpoint> seen;
    std::vector<tcp::endpoint> all = s.endpoints;
    all.insert(all.end(), s.other_node_endpoints.begin(), s.other_node_endpoints.end());
    for (const auto& ep : all) {
      if (!ep.address().is_v4())
        throw input_error("/services", "IPv4 endpoints for \"" + s.service +
                                           "\" (iptables mode writes the IPv4 nat table)");
      if (!seen.insert(ep).second)
        throw input_error("/services", "distinct endpoints for \"" + s.service + "\"; " +
                                           endpoint_string(ep) + " is listed twice");
    }
  }
}

restore_plan render_sync(const std::vector<service_endpoints>& services,
                         const rule_options& options,
                         const std::set<std::string>& installed_nat_chains,
                         bool link_builtin_chains) {
  restore_plan plan;
  table_text nat, filter;

  plan.filter_chains = base_filter_chains(options);
  for (const auto& chain : plan.filter_chains)
    filter.declare(chain);
  std::vector<std::string_view> nat_base{services_chain, node_ports_chain, postrouting_chain,
                                         mark_masq_chain};
  if (options.mark_drop_chains) nat_base.push_back(mark_drop_chain);
  for (std::string_view chain : nat_base) {
    nat.declare(chain);
    plan.nat_chains.insert(std::string(chain));
  }
  if (link_builtin_chains) {
    for (const auto& jump : filter_jumps(options))
      filter.rules.push_back("-I " + jump);
    for (const auto& jump : nat_jumps())
      nat.rules.push_back("-I " + jump);
  }
  nat.add(postrouting_chain,
          comment(snat_comment) + " -m mark --mark " + std::string(masq_mark) + " -j MASQUERADE");
  nat.add(mark_masq_chain, "-j MARK --set-xmark " + std::string(masq_mark));
  if (options.mark_drop_chains) {
    nat.add(mark_drop_chain, "-j MARK --set-xmark " + std::string(drop_mark));
    filter.add(firewall_chain, comment(firewall_comment) + " -m mark --mark " +
                                   std::string(drop_mark) + " -j DROP");
  }

  for (const auto& s : services)
    write_service(s, options, nat, filter, plan.nat_chains);

  // Last rule of KUBE-SERVICES: anything addressed to the node goes on to the NodePorts.
  nat.add(services_chain, comment(node_ports_comment) + " -m addrtype --dst-type LOCAL -j " +
                              std::string(node_ports_chain));

  // Chains of endpoints that went away: declared (flushed), then deleted, as syncProxyRules did.
  for (const auto& chain : installed_nat_chains) {
    if (!is_service_chain(chain) || plan.nat_chains.count(chain)) continue;
    nat.declare(chain);
    nat.deletions.push_back("-X " + chain);
  }

  plan.text = filter.render("filter");
  plan.text += nat.render("nat");
  return plan;
}

std::string restore_input(const std::string& rendered) {
  std::string out;
  out.reserve(rendered.size() + 16);
  bool listed = false;
  std::size_t start = 0;
  while (start < rendered.size()) {
    std::size_t end = rendered.find('\n', start);
    end = end == std::string::npos ? rendered.size() : end + 1;
    std::string_view line(rendered.data() + start, end - start);
    if (line.starts_with("*")) listed = false;
    // After any -I (inserts into built-in chains that may not exist yet, which a -S before them
    // would keep from being created), before the first other command.
    if (!listed && line.starts_with("-") && !line.starts_with("-I ")) {
      out += "-S\n";
      listed = true;
    }
    out += line;
    start = end;
  }
  return out;
}

std::string render_teardown(const restore_plan& installed, const rule_options& options,
                            bool linked) {
  table_text nat, filter;
  for (const auto& chain : installed.filter_chains) {
    filter.declare(chain);
    filter.deletions.push_back("-X " + chain);
  }
  for (const auto& chain : installed.nat_chains) {
    nat.declare(chain);
    nat.deletions.push_back("-X " + chain);
  }
  if (linked) {
    for (const auto& jump : filter_jumps(options))
      filter.rules.push_back("-D " + jump);
    for (const auto& jump : nat_jumps())
      nat.rules.push_back("-D " + jump);
  }
  return filter.render("filter") + nat.render("nat");
}

} // namespace backlog_lab::proxy_sim::iptables
