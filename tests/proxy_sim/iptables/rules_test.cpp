#include <algorithm>
#include <gtest/gtest.h>
#include <sstream>

#include "harness/core/error.hpp"
#include "proxy_sim/iptables/rules.hpp"

namespace backlog_lab::proxy_sim::iptables {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  for (auto& line : lines_of(text))
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  return out;
}

// The text of one table ("*filter" ... "COMMIT").
std::string table(const std::string& text, const std::string& name) {
  auto start = text.find("*" + name + "\n");
  if (start == std::string::npos) return {};
  return text.substr(start, text.find("COMMIT\n", start) + 7 - start);
}

bool contains(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

service_endpoints service_with(std::size_t n, const std::string& name = "backend/web:http") {
  service_endpoints s;
  s.service = name;
  s.node_port = 30720;
  s.port = 80;
  for (std::size_t i = 0; i < n; ++i)
    s.endpoints.emplace_back(net::ip::make_address_v4("203.0.113." + std::to_string(10 + i)), 8080);
  return s;
}

// Known pairs from kubernetes' own tests (pkg/proxy/iptables/proxier_test.go), well-known
// cluster services, and the incident report's `iptables -t nat -S` (docs/incident.md, "Excerpts").
TEST(chain_names, match_kube_proxy_hashes) {
  EXPECT_EQ(service_chain_name("ns1/svc1:p80", "tcp"), "KUBE-SVC-XPGD46QRK7WJZT7O");
  EXPECT_EQ(endpoint_chain_name("ns1/svc1:p80", "tcp", "10.180.0.1:80"),
            "KUBE-SEP-SXIVWICOYRO3J4NJ");
  EXPECT_EQ(service_chain_name("default/kubernetes:https", "tcp"), "KUBE-SVC-NPX46M4PTMTKRN6Y");
  EXPECT_EQ(service_chain_name("kube-system/kube-dns:dns", "udp"), "KUBE-SVC-TCOU7JCQXEZGVUNU");
  EXPECT_EQ(service_chain_name("backend/neo-prod-ccapi-inner-lb:http"),
            "KUBE-SVC-RK4J2BHJ4QTMGP2E");
  EXPECT_EQ(
      endpoint_chain_name("backend/neo-prod-ccapi-inner-lb:http", "tcp", "100.96.179.196:8080"),
      "KUBE-SEP-HOTTGIVHNU7PF2IZ");
  EXPECT_EQ(
      endpoint_chain_name("backend/neo-prod-ccapi-inner-lb:http", "tcp", "100.97.100.231:8080"),
      "KUBE-SEP-KAMGFW7GBX2ZEWNG");
  EXPECT_EQ(service_chain_name("backend/llspay-prod-rpc-lb:grpc"), "KUBE-SVC-J5WKZTVXLKWSTUZM");
  // The protocol is part of the hash: the same port name over UDP is another chain.
  EXPECT_NE(service_chain_name("ns1/svc1:p80", "udp"), service_chain_name("ns1/svc1:p80", "tcp"));
}

TEST(chain_names, endpoint_string_is_go_join_host_port) {
  EXPECT_EQ(endpoint_string(tcp::endpoint(net::ip::make_address("100.96.179.196"), 8080)),
            "100.96.179.196:8080");
  EXPECT_EQ(endpoint_string(tcp::endpoint(net::ip::make_address("2001:db8::1"), 80)),
            "[2001:db8::1]:80");
}

TEST(probability, is_one_over_n_minus_i_with_five_decimals) {
  EXPECT_EQ(probability_text(0, 2), "0.50000");
  EXPECT_EQ(probability_text(0, 3), "0.33333");
  EXPECT_EQ(probability_text(1, 3), "0.50000");
  EXPECT_EQ(probability_text(0, 1), "1.00000");
  EXPECT_THROW(probability_text(3, 3), std::out_of_range);
  const std::vector<std::string> forty = {
      "0.02500", "0.02564", "0.02632", "0.02703", "0.02778", "0.02857", "0.02941", "0.03030",
      "0.03125", "0.03226", "0.03333", "0.03448", "0.03571", "0.03704", "0.03846", "0.04000",
      "0.04167", "0.04348", "0.04545", "0.04762", "0.05000", "0.05263", "0.05556", "0.05882",
      "0.06250", "0.06667", "0.07143", "0.07692", "0.08333", "0.09091", "0.10000", "0.11111",
      "0.12500", "0.14286", "0.16667", "0.20000", "0.25000", "0.33333", "0.50000"};
  for (std::size_t i = 0; i < forty.size(); ++i)
    EXPECT_EQ(probability_text(i, 40), forty[i]);
}

// The balancing rules of a service with n endpoints: n-1 random matches, then the last one.
class balancing : public ::testing::TestWithParam<std::size_t> {};

TEST_P(balancing, writes_n_minus_one_random_rules_and_one_unconditional) {
  const std::size_t n = GetParam();
  auto s = service_with(n);
  auto plan = render_sync({s}, rule_options{});
  const std::string svc = service_chain_name(s.service);
  auto svc_rules = lines_starting(plan.text, "-A " + svc + " ");
  ASSERT_EQ(svc_rules.size(), n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string sep = endpoint_chain_name(s.service, "tcp", endpoint_string(s.endpoints[i]));
    std::string expected = "-A " + svc + " -m comment --comment \"backend/web:http\"";
    if (i + 1 < n)
      expected += " -m statistic --mode random --probability " + probability_text(i, n);
    EXPECT_EQ(svc_rules[i], expected + " -j " + sep);
    auto sep_rules = lines_starting(plan.text, "-A " + sep + " ");
    const std::string ip = s.endpoints[i].address().to_string();
    ASSERT_EQ(sep_rules.size(), 2u);
    EXPECT_EQ(sep_rules[0], "-A " + sep + " -s " + ip +
                                "/32 -m comment --comment \"backend/web:http\" -j KUBE-MARK-MASQ");
    EXPECT_EQ(sep_rules[1], "-A " + sep +
                                " -p tcp -m comment --comment \"backend/web:http\" -m tcp -j DNAT "
                                "--to-destination " +
                                ip + ":8080");
    EXPECT_TRUE(plan.nat_chains.count(sep));
  }
  EXPECT_TRUE(plan.nat_chains.count(svc));
}

INSTANTIATE_TEST_SUITE_P(endpoints, balancing, ::testing::Values(1, 2, 3, 40));

TEST(render_sync, three_endpoints_whole_nat_table) {
  auto s = service_with(3);
  s.cluster_ip = "192.0.2.10";
  auto plan = render_sync({s}, rule_options{});
  const std::string svc = service_chain_name(s.service);
  auto sep = [&](int i) {
    return endpoint_chain_name(s.service, "tcp", endpoint_string(s.endpoints[i]));
  };
  std::string expected =
      "*nat\n"
      ":KUBE-SERVICES - [0:0]\n"
      ":KUBE-NODEPORTS - [0:0]\n"
      ":KUBE-POSTROUTING - [0:0]\n"
      ":KUBE-MARK-MASQ - [0:0]\n"
      ":" +
      svc +
      " - [0:0]\n"
      ":" +
      sep(0) +
      " - [0:0]\n"
      ":" +
      sep(1) +
      " - [0:0]\n"
      ":" +
      sep(2) +
      " - [0:0]\n"
      "-I PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
      "-I OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
      "-I POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n"
      "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -m "
      "mark --mark 0x4000/0x4000 -j MASQUERADE\n"
      "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n"
      "-A KUBE-SERVICES -d 192.0.2.10/32 -p tcp -m comment --comment \"backend/web:http cluster "
      "IP\" -m tcp --dport 80 -j " +
      svc +
      "\n"
      "-A KUBE-NODEPORTS -p tcp -m comment --comment \"backend/web:http\" -m tcp --dport 30720 -j "
      "KUBE-MARK-MASQ\n"
      "-A KUBE-NODEPORTS -p tcp -m comment --comment \"backend/web:http\" -m tcp --dport 30720 "
      "-j " +
      svc +
      "\n"
      "-A " +
      svc +
      " -m comment --comment \"backend/web:http\" -m statistic --mode random --probability 0.33333 "
      "-j " +
      sep(0) +
      "\n"
      "-A " +
      svc +
      " -m comment --comment \"backend/web:http\" -m statistic --mode random --probability 0.50000 "
      "-j " +
      sep(1) +
      "\n"
      "-A " +
      svc + " -m comment --comment \"backend/web:http\" -j " + sep(2) +
      "\n"
      "-A " +
      sep(0) +
      " -s 203.0.113.10/32 -m comment --comment \"backend/web:http\" -j KUBE-MARK-MASQ\n"
      "-A " +
      sep(0) +
      " -p tcp -m comment --comment \"backend/web:http\" -m tcp -j DNAT --to-destination "
      "203.0.113.10:8080\n"
      "-A " +
      sep(1) +
      " -s 203.0.113.11/32 -m comment --comment \"backend/web:http\" -j KUBE-MARK-MASQ\n"
      "-A " +
      sep(1) +
      " -p tcp -m comment --comment \"backend/web:http\" -m tcp -j DNAT --to-destination "
      "203.0.113.11:8080\n"
      "-A " +
      sep(2) +
      " -s 203.0.113.12/32 -m comment --comment \"backend/web:http\" -j KUBE-MARK-MASQ\n"
      "-A " +
      sep(2) +
      " -p tcp -m comment --comment \"backend/web:http\" -m tcp -j DNAT --to-destination "
      "203.0.113.12:8080\n"
      "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be "
      "the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n"
      "COMMIT\n";
  EXPECT_EQ(table(plan.text, "nat"), expected);
  // 1.5: the filter table only rejects the ClusterIP of services without endpoints.
  EXPECT_EQ(table(plan.text, "filter"),
            "*filter\n:KUBE-SERVICES - [0:0]\n-I OUTPUT -m comment --comment \"kubernetes service "
            "portals\" -j KUBE-SERVICES\nCOMMIT\n");
}

TEST(render_sync, v1_5_without_endpoints_keeps_node_port_rules_and_no_reject) {
  auto s = service_with(0);
  s.cluster_ip = "192.0.2.10";
  auto plan = render_sync({s}, rule_options{});
  const std::string svc = service_chain_name(s.service);
  auto nat = lines_of(table(plan.text, "nat"));
  EXPECT_TRUE(contains(nat, "-A KUBE-NODEPORTS -p tcp -m comment --comment \"backend/web:http\" "
                            "-m tcp --dport 30720 -j " +
                                svc));
  EXPECT_TRUE(contains(nat, ":" + svc + " - [0:0]"));          // declared, so flushed
  EXPECT_TRUE(lines_starting(plan.text, "-A " + svc).empty()); // and left empty
  EXPECT_EQ(plan.text.find("DNAT"), std::string::npos);
  EXPECT_EQ(plan.text.find("KUBE-SEP-"), std::string::npos);
  auto filter = table(plan.text, "filter");
  EXPECT_EQ(filter.find("--dst-type LOCAL"), std::string::npos) << filter;
  EXPECT_TRUE(contains(lines_of(filter),
                       "-A KUBE-SERVICES -d 192.0.2.10/32 -p tcp -m comment --comment "
                       "\"backend/web:http has no endpoints\" -m tcp --dport 80 -j REJECT "
                       "--reject-with icmp-port-unreachable"));
}

TEST(render_sync, v1_6_5_rejects_node_port_in_input) {
  auto s = service_with(0);
  s.cluster_ip = "192.0.2.10";
  rule_options options;
  options.version = preset::v1_6_5;
  auto filter = lines_of(table(render_sync({s}, options).text, "filter"));
  EXPECT_TRUE(contains(filter, "-I INPUT -m comment --comment \"kubernetes service portals\" -j "
                               "KUBE-SERVICES"));
  EXPECT_TRUE(contains(filter, "-I OUTPUT -m comment --comment \"kubernetes service portals\" -j "
                               "KUBE-SERVICES"));
  EXPECT_TRUE(contains(filter, "-A KUBE-SERVICES -p tcp -m comment --comment \"backend/web:http "
                               "has no endpoints\" -m addrtype --dst-type LOCAL -m tcp --dport "
                               "30720 -j REJECT --reject-with icmp-port-unreachable"));
  EXPECT_TRUE(contains(filter, "-A KUBE-SERVICES -d 192.0.2.10/32 -p tcp -m comment --comment "
                               "\"backend/web:http has no endpoints\" -m tcp --dport 80 -j REJECT "
                               "--reject-with icmp-port-unreachable"));
  // With endpoints there is nothing to reject.
  auto with = table(render_sync({service_with(2)}, options).text, "filter");
  EXPECT_EQ(with.find("REJECT"), std::string::npos) << with;
}

TEST(render_sync, v1_24_rejects_in_external_services_and_skips_empty_service_chains) {
  auto s = service_with(0);
  rule_options options;
  options.version = preset::v1_24;
  auto plan = render_sync({s}, options);
  auto filter = lines_of(table(plan.text, "filter"));
  EXPECT_TRUE(contains(filter, "-I INPUT -m conntrack --ctstate NEW -m comment --comment "
                               "\"kubernetes externally-visible service portals\" -j "
                               "KUBE-EXTERNAL-SERVICES"));
  EXPECT_TRUE(contains(filter, "-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "
                               "\"backend/web:http has no endpoints\" -m addrtype --dst-type "
                               "LOCAL -m tcp --dport 30720 -j REJECT --reject-with "
                               "icmp-port-unreachable"));
  EXPECT_TRUE(lines_starting(plan.text, "-A KUBE-NODEPORTS").empty());
  EXPECT_FALSE(plan.nat_chains.count(service_chain_name(s.service)));
  EXPECT_FALSE(holds_node_ports(preset::v1_24));
  EXPECT_TRUE(holds_node_ports(preset::v1_5));
  EXPECT_TRUE(holds_node_ports(preset::v1_6_5));
}

TEST(render_sync, v1_20_rejects_in_external_services_holds_ipv4_and_keeps_kube_xlb) {
  auto s = service_with(0);
  rule_options options;
  options.version = preset::v1_20;
  auto plan = render_sync({s}, options);
  auto filter = lines_of(table(plan.text, "filter"));
  EXPECT_TRUE(contains(filter, "-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "
                               "\"backend/web:http has no endpoints\" -m addrtype --dst-type "
                               "LOCAL -m tcp --dport 30720 -j REJECT --reject-with "
                               "icmp-port-unreachable"));
  EXPECT_TRUE(lines_starting(plan.text, "-A KUBE-NODEPORTS").empty());
  EXPECT_TRUE(holds_node_ports(preset::v1_20));
  EXPECT_EQ(held_socket_shape(preset::v1_20), node_port_socket::ipv4);
  EXPECT_EQ(held_socket_shape(preset::v1_6_5), node_port_socket::dual_stack);
  EXPECT_EQ(held_socket_shape(preset::v1_5), node_port_socket::dual_stack);

  // externalTrafficPolicy Local without a local endpoint: KUBE-XLB and KUBE-MARK-DROP (the
  // pre-1.24 proxier), not KUBE-EXT and a filter DROP.
  auto local = service_with(0);
  local.external_policy_local = true;
  local.other_node_endpoints = {{net::ip::make_address_v4("10.244.1.10"), 8080}};
  options.mark_drop_chains = true;
  auto text = render_sync({local}, options).text;
  const std::string xlb = "KUBE-XLB-" + chain_hash(local.service + "tcp");
  EXPECT_TRUE(contains(lines_of(text), "-A KUBE-NODEPORTS -p tcp -m comment --comment "
                                       "\"backend/web:http\" -m tcp --dport 30720 -j " +
                                           xlb))
      << text;
  EXPECT_TRUE(contains(lines_of(text), "-A " + xlb +
                                           " -m comment --comment \"backend/web:http has no "
                                           "local endpoints\" -j KUBE-MARK-DROP"))
      << text;
  EXPECT_EQ(text.find("KUBE-EXT-"), std::string::npos) << text;
  EXPECT_EQ(text.find("has no local endpoints\" -m addrtype"), std::string::npos) << text;
}

TEST(render_sync, client_ip_affinity_also_in_the_local_policy_chains) {
  auto s = service_with(2);
  s.external_policy_local = true;
  rule_options options;
  options.client_ip_affinity = true;
  for (preset version : {preset::v1_6_5, preset::v1_24}) {
    options.version = version;
    auto text = render_sync({s}, options).text;
    // KUBE-XLB (up to 1.23) or KUBE-SVL (later) balances over the local endpoints, and its
    // affinity rules come first, as writeServiceToEndpointRules / the XLB code wrote them.
    const std::string chain =
        (version == preset::v1_24 ? "KUBE-SVL-" : "KUBE-XLB-") + chain_hash(s.service + "tcp");
    auto rules = lines_starting(text, "-A " + chain + " ");
    auto first = std::find_if(rules.begin(), rules.end(), [](const std::string& r) {
      return r.find("--rcheck") != std::string::npos ||
             r.find("--probability") != std::string::npos;
    });
    ASSERT_NE(first, rules.end()) << text;
    EXPECT_NE(first->find("-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-"),
              std::string::npos)
        << *first;
    EXPECT_EQ(
        std::count_if(rules.begin(), rules.end(),
                      [](const std::string& r) { return r.find("--rcheck") != std::string::npos; }),
        2)
        << text;
  }
}

TEST(render_sync, masquerade_all_and_client_ip_affinity) {
  auto s = service_with(2);
  s.cluster_ip = "192.0.2.10";
  rule_options options;
  options.masquerade_all = true;
  options.client_ip_affinity = true;
  options.affinity_timeout_s = 180;
  auto plan = render_sync({s}, options);
  const std::string svc = service_chain_name(s.service);
  const std::string sep0 = endpoint_chain_name(s.service, "tcp", "203.0.113.10:8080");
  auto nat = lines_of(plan.text);
  EXPECT_TRUE(contains(nat, "-A KUBE-SERVICES -d 192.0.2.10/32 -p tcp -m comment --comment "
                            "\"backend/web:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ"));
  EXPECT_TRUE(contains(nat, "-A " + svc +
                                " -m comment --comment \"backend/web:http\" -m recent "
                                "--rcheck --seconds 180 --reap --name " +
                                sep0 + " --mask 255.255.255.255 --rsource -j " + sep0));
  EXPECT_TRUE(contains(nat, "-A " + sep0 +
                                " -p tcp -m comment --comment \"backend/web:http\" -m "
                                "recent --set --name " +
                                sep0 +
                                " --mask 255.255.255.255 --rsource -m "
                                "tcp -j DNAT --to-destination 203.0.113.10:8080"));
  // Affinity rules come before the balancing rules.
  auto svc_rules = lines_starting(plan.text, "-A " + svc + " ");
  ASSERT_EQ(svc_rules.size(), 4u);
  EXPECT_NE(svc_rules[1].find("--rcheck"), std::string::npos);
  EXPECT_NE(svc_rules[2].find("--probability 0.50000"), std::string::npos);
}

TEST(render_sync, deletes_chains_of_removed_endpoints_and_links_once) {
  auto first = render_sync({service_with(3)}, rule_options{});
  auto s = service_with(1);
  auto second = render_sync({s}, rule_options{}, first.nat_chains, false);
  const std::string gone1 = endpoint_chain_name(s.service, "tcp", "203.0.113.11:8080");
  const std::string gone2 = endpoint_chain_name(s.service, "tcp", "203.0.113.12:8080");
  auto lines = lines_of(second.text);
  EXPECT_TRUE(contains(lines, ":" + gone1 + " - [0:0]"));
  EXPECT_TRUE(contains(lines, "-X " + gone1));
  EXPECT_TRUE(contains(lines, "-X " + gone2));
  EXPECT_FALSE(second.nat_chains.count(gone1));
  EXPECT_TRUE(lines_starting(second.text, "-I ").empty()) << second.text;
  EXPECT_EQ(lines_starting(first.text, "-I ").size(), 4u); // PREROUTING, OUTPUT x2, POSTROUTING
  // "-X" lines come after every rule, right before COMMIT.
  auto nat = lines_of(table(second.text, "nat"));
  EXPECT_EQ(nat[nat.size() - 2].rfind("-X ", 0), 0u);
}

TEST(render_teardown, unlinks_flushes_and_deletes_everything_installed) {
  rule_options options;
  options.version = preset::v1_6_5;
  auto plan = render_sync({service_with(2)}, options);
  auto text = render_teardown(plan, options, true);
  auto lines = lines_of(text);
  for (const auto& chain : plan.nat_chains) {
    EXPECT_TRUE(contains(lines, ":" + chain + " - [0:0]")) << chain;
    EXPECT_TRUE(contains(lines, "-X " + chain)) << chain;
  }
  EXPECT_TRUE(contains(lines, "-D INPUT -m comment --comment \"kubernetes service portals\" -j "
                              "KUBE-SERVICES"));
  EXPECT_TRUE(contains(lines, "-D PREROUTING -m comment --comment \"kubernetes service portals\" "
                              "-j KUBE-SERVICES"));
  EXPECT_TRUE(lines_starting(text, "-A ").empty());
  EXPECT_TRUE(lines_starting(render_teardown(plan, options, false), "-D ").empty());
}

TEST(options, bad_input_names_the_field) {
  scenario::proxy_spec spec;
  spec.affinity_timeout_s = 0;
  try {
    make_rule_options(spec);
    FAIL() << "expected input_error";
  } catch (const input_error& e) {
    EXPECT_EQ(e.where(), "/proxy/affinity_timeout_s");
  }
  spec.affinity_timeout_s = 60;
  spec.session_affinity = scenario::session_affinity::client_ip;
  spec.preset = scenario::proxy_preset::v1_6_5;
  auto options = make_rule_options(spec);
  EXPECT_TRUE(options.client_ip_affinity);
  EXPECT_EQ(options.version, preset::v1_6_5);
}

TEST(validate_services, rejects_what_the_rules_cannot_carry) {
  EXPECT_NO_THROW(validate_services({service_with(3)}));
  auto quote = service_with(1, "ns/\"svc\":http");
  EXPECT_THROW(validate_services({quote}), input_error);
  EXPECT_THROW(validate_services({service_with(1), service_with(1, "ns/other:http")}),
               input_error); // same node_port twice
  auto v6 = service_with(0);
  v6.endpoints.emplace_back(net::ip::make_address("2001:db8::1"), 80);
  EXPECT_THROW(validate_services({v6}), input_error);
  auto twice = service_with(1);
  twice.endpoints.push_back(twice.endpoints[0]);
  EXPECT_THROW(validate_services({twice}), input_error);
  auto bad_ip = service_with(1);
  bad_ip.cluster_ip = "10.96.0.300";
  EXPECT_THROW(validate_services({bad_ip}), input_error);
}

} // namespace
} // namespace backlog_lab::proxy_sim::iptables

namespace backlog_lab::proxy_sim::iptables {
namespace {

TEST(restore_input, lists_each_table_once_after_its_inserts_and_before_its_other_commands) {
  const std::string rendered = "*filter\n:KUBE-SERVICES - [0:0]\n-I OUTPUT -j KUBE-SERVICES\n"
                               "COMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n"
                               "-I PREROUTING -j KUBE-SERVICES\n-A KUBE-SVC-X -j ACCEPT\n"
                               "-A KUBE-SERVICES -j KUBE-SVC-X\n-X KUBE-SEP-Y\nCOMMIT\n";
  EXPECT_EQ(restore_input(rendered),
            "*filter\n:KUBE-SERVICES - [0:0]\n-I OUTPUT -j KUBE-SERVICES\nCOMMIT\n*nat\n"
            ":KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n-I PREROUTING -j KUBE-SERVICES\n-S\n"
            "-A KUBE-SVC-X -j ACCEPT\n-A KUBE-SERVICES -j KUBE-SVC-X\n-X KUBE-SEP-Y\nCOMMIT\n");
  // A teardown: deletions from built-in chains come after the listing too.
  EXPECT_EQ(restore_input("*nat\n:KUBE-SERVICES - [0:0]\n-D PREROUTING -j KUBE-SERVICES\n"
                          "-X KUBE-SERVICES\nCOMMIT\n"),
            "*nat\n:KUBE-SERVICES - [0:0]\n-S\n-D PREROUTING -j KUBE-SERVICES\n"
            "-X KUBE-SERVICES\nCOMMIT\n");
}

} // namespace
} // namespace backlog_lab::proxy_sim::iptables
