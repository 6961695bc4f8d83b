// The nftables renderer against kube-proxy's shape (pkg/proxy/nftables/proxier.go and its
// tests; docs/proxy-nftables.md). Pure text, no kernel.
#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "proxy_sim/nftables/rules.hpp"

namespace backlog_lab::proxy_sim::nftables {
namespace {

using scenario::proxy_preset;

const std::string service_name = "backend/neo-prod-ccapi-inner-lb:http";

service_endpoints one_service(std::vector<tcp::endpoint> endpoints) {
  service_endpoints s;
  s.service = service_name;
  s.node_port = 30720;
  s.port = 80;
  s.cluster_ip = "10.96.18.20";
  s.endpoints = std::move(endpoints);
  return s;
}

tcp::endpoint ep(const char* ip, uint16_t port = 8080) {
  return {net::ip::make_address_v4(ip), port};
}

rule_options options_for(proxy_preset v) {
  rule_options o;
  o.version = v;
  return o;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(nftables_rules, chain_names_hash_as_kube_proxy_does) {
  // The examples in servicePortChainNameBase's and servicePortEndpointChainNameBase's comments.
  EXPECT_EQ(service_chain_base("ns1/svc1:p80"), "ULMVA6XW-ns1/svc1/tcp/p80");
  EXPECT_EQ(endpoint_chain_base("ns1/svc1:p80", ep("10.180.0.1", 80)),
            "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80");
  auto long_name = hash_and_truncate(std::string(300, 'a'));
  EXPECT_EQ(long_name.size(), 240u);
  EXPECT_EQ(long_name.substr(237), "...");
}

TEST(nftables_rules, a_service_with_endpoints_dispatches_through_maps_and_numgen) {
  auto plan = render_sync({one_service({ep("10.244.0.5"), ep("10.244.0.6")})},
                          options_for(proxy_preset::v1_33));
  const std::string svc = "service-" + service_chain_base(service_name);
  const std::string ext = "external-" + service_chain_base(service_name);
  const std::string e0 = "endpoint-" + endpoint_chain_base(service_name, ep("10.244.0.5"));
  const std::string e1 = "endpoint-" + endpoint_chain_base(service_name, ep("10.244.0.6"));
  const auto& t = plan.text;
  EXPECT_TRUE(has_line(t, "add table ip kube-proxy { comment \"rules for kube-proxy\" ; }")) << t;
  EXPECT_TRUE(has_line(t, "add chain ip kube-proxy filter-input { type filter hook input "
                          "priority -110 ; }"));
  EXPECT_TRUE(has_line(t, "add chain ip kube-proxy nat-prerouting { type nat hook prerouting "
                          "priority -100 ; }"));
  EXPECT_TRUE(has_line(t, "add chain ip kube-proxy nat-postrouting { type nat hook postrouting "
                          "priority 100 ; }"));
  EXPECT_TRUE(has_line(t, "add rule ip kube-proxy nat-prerouting jump services"));
  EXPECT_TRUE(has_line(t, "add rule ip kube-proxy services ip daddr . meta l4proto . th dport "
                          "vmap @service-ips"));
  EXPECT_TRUE(has_line(t, "add rule ip kube-proxy services fib daddr type local ip daddr != "
                          "127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"));
  EXPECT_TRUE(has_line(t, "flush map ip kube-proxy service-nodeports"));
  EXPECT_TRUE(has_line(t, "add element ip kube-proxy service-ips { 10.96.18.20 . tcp . 80 : "
                          "goto " +
                              svc + " }"));
  EXPECT_TRUE(has_line(t, "add element ip kube-proxy service-nodeports { tcp . 30720 : goto " +
                              ext + " }"));
  EXPECT_TRUE(has_line(t, "add rule ip kube-proxy " + ext + " jump mark-for-masquerade"));
  EXPECT_TRUE(has_line(t, "add rule ip kube-proxy " + ext + " goto " + svc));
  EXPECT_TRUE(has_line(t, "add rule ip kube-proxy " + svc +
                              " numgen random mod 2 vmap { 0 : "
                              "goto " +
                              e0 + ", 1 : goto " + e1 + " }"));
  EXPECT_TRUE(has_line(t, "add rule ip kube-proxy " + e0 +
                              " ip saddr 10.244.0.5 jump mark-for-masquerade"));
  EXPECT_TRUE(
      has_line(t, "add rule ip kube-proxy " + e0 + " meta l4proto tcp dnat to 10.244.0.5:8080"));
  EXPECT_TRUE(has_line(t, "add rule ip kube-proxy masquerading masquerade fully-random"));
  EXPECT_EQ(t.find("no-endpoint-nodeports {"), t.find("no-endpoint-nodeports { type"));
  EXPECT_EQ(plan.service_chains, (std::set<std::string>{svc, ext, e0, e1}));
  EXPECT_EQ(plan.chains.at(svc).size(), 1u);
  EXPECT_EQ(plan.elements.at("service-nodeports"), (std::set<std::string>{"tcp . 30720"}));
}

TEST(nftables_rules, a_service_without_endpoints_is_rejected_from_the_filter_chains) {
  auto plan = render_sync({one_service({})}, options_for(proxy_preset::v1_33));
  const auto& t = plan.text;
  EXPECT_TRUE(has_line(t, "add element ip kube-proxy no-endpoint-nodeports { tcp . 30720 "
                          "comment \"" +
                              service_name + "\" : goto reject-chain }"))
      << t;
  EXPECT_TRUE(has_line(t, "add element ip kube-proxy no-endpoint-services { 10.96.18.20 . tcp . "
                          "80 comment \"" +
                              service_name + "\" : goto reject-chain }"));
  EXPECT_TRUE(has_line(t, "add rule ip kube-proxy reject-chain reject"));
  EXPECT_TRUE(plan.service_chains.empty());
  EXPECT_EQ(t.find("service-nodeports { tcp"), std::string::npos);
  EXPECT_EQ(t.find("dnat to"), std::string::npos);
}

TEST(nftables_rules, the_alpha_and_ga_layouts_differ_in_their_check_chains) {
  auto alpha = render_sync({one_service({})}, options_for(proxy_preset::v1_29)).text;
  auto ga = render_sync({one_service({})}, options_for(proxy_preset::v1_33)).text;
  // 1.29: one endpoints-check chain from input, forward and output.
  EXPECT_TRUE(has_line(alpha, "add rule ip kube-proxy filter-output ct state new jump "
                              "endpoints-check"));
  EXPECT_TRUE(has_line(alpha, "add rule ip kube-proxy endpoints-check fib daddr type local ip "
                              "daddr != 127.0.0.0/8 meta l4proto . th dport vmap "
                              "@no-endpoint-nodeports"));
  EXPECT_EQ(alpha.find("cluster-ips"), std::string::npos);
  EXPECT_EQ(alpha.find("filter-output-post-dnat"), std::string::npos);
  // 1.33: NodePorts checked from input only; ClusterIPs in their own set and check chain.
  EXPECT_TRUE(has_line(ga, "add rule ip kube-proxy filter-input ct state new jump "
                           "nodeport-endpoints-check"));
  EXPECT_EQ(ga.find("filter-output ct state new jump nodeport-endpoints-check"), std::string::npos);
  EXPECT_TRUE(has_line(ga, "add chain ip kube-proxy filter-output-post-dnat { type filter hook "
                           "output priority -90 ; }"));
  EXPECT_TRUE(has_line(ga, "add element ip kube-proxy cluster-ips { 10.96.18.20 }"));
  EXPECT_TRUE(has_line(ga, "add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips "
                           "reject"));
  EXPECT_EQ(ga.find("jump endpoints-check"), std::string::npos);
}

TEST(nftables_rules, stale_chains_are_flushed_now_and_deleted_later) {
  const rule_options o = options_for(proxy_preset::v1_33);
  auto with = render_sync({one_service({ep("10.244.0.5")})}, o);
  auto without = render_sync({one_service({})}, o, with.service_chains, {}, false);
  for (const auto& c : with.service_chains) {
    EXPECT_TRUE(has_line(without.text, "flush chain ip kube-proxy " + c)) << c;
    EXPECT_EQ(without.text.find("delete chain ip kube-proxy " + c), std::string::npos);
  }
  EXPECT_EQ(without.text.find("delete chain ip kube-proxy filter-input"), std::string::npos);
  EXPECT_EQ(render_stale_chain_deletion({"service-X"}), "delete chain ip kube-proxy service-X\n");
  EXPECT_EQ(render_teardown(), "add table ip kube-proxy\ndelete table ip kube-proxy\n");
}

TEST(nftables_rules, client_ip_affinity_uses_sets_with_timeouts) {
  rule_options o = options_for(proxy_preset::v1_33);
  o.client_ip_affinity = true;
  o.affinity_timeout_s = 10800;
  auto plan = render_sync({one_service({ep("10.244.0.5")})}, o);
  const std::string base = endpoint_chain_base(service_name, ep("10.244.0.5"));
  const std::string svc = "service-" + service_chain_base(service_name);
  EXPECT_TRUE(has_line(plan.text, "add set ip kube-proxy affinity-" + base +
                                      " { type ipv4_addr ; flags dynamic,timeout ; timeout "
                                      "10800s ; }"))
      << plan.text;
  EXPECT_TRUE(has_line(plan.text, "add rule ip kube-proxy " + svc + " ip saddr @affinity-" + base +
                                      " goto endpoint-" + base));
  EXPECT_TRUE(has_line(plan.text, "add rule ip kube-proxy endpoint-" + base + " update @affinity-" +
                                      base + " { ip saddr }"));
  // Gone with its endpoint: deleted in the same transaction.
  auto after = render_sync({one_service({})}, o, plan.service_chains, plan.affinity_sets, false);
  EXPECT_TRUE(has_line(after.text, "delete set ip kube-proxy affinity-" + base));
}

TEST(nftables_rules, local_policy_without_local_endpoints_drops_node_port_traffic) {
  auto s = one_service({});
  s.external_policy_local = true;
  s.other_node_endpoints = {ep("10.244.1.10")};
  auto plan = render_sync({s}, options_for(proxy_preset::v1_33));
  EXPECT_TRUE(has_line(plan.text, "add element ip kube-proxy no-endpoint-nodeports { tcp . 30720 "
                                  "comment \"" +
                                      service_name + "\" : drop }"))
      << plan.text;
  const std::string ext = "external-" + service_chain_base(service_name);
  EXPECT_TRUE(has_line(plan.text, "add rule ip kube-proxy " + ext +
                                      " fib saddr type local goto "
                                      "service-" +
                                      service_chain_base(service_name) +
                                      " comment \"short-circuit local traffic\""));
}

TEST(nftables_rules, only_nftables_presets_are_accepted) {
  scenario::proxy_spec spec;
  spec.mode = scenario::proxy_mode::nftables;
  spec.preset = proxy_preset::v1_24;
  EXPECT_THROW(make_rule_options(spec), input_error);
  spec.preset = proxy_preset::v1_29;
  EXPECT_EQ(make_rule_options(spec).version, proxy_preset::v1_29);
}

} // namespace
} // namespace backlog_lab::proxy_sim::nftables
