// The nftables proxier on a real kernel: what `nft list table ip kube-proxy` shows compared with
// what was rendered, traffic through three namespaces (client -> node -> pod).
#include <poll.h>

#include <gtest/gtest.h>
#include <map>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/sysctl.hpp"
#include "proxy_sim/nftables/nftables_proxier.hpp"
#include "proxy_sim/nftables/rules.hpp"
#include "proxy_sim/proxier.hpp"
#include "tests/support/kernel_view.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::proxy_sim {
namespace {

using testing::run_ok;
using namespace std::chrono_literals;

constexpr uint16_t node_port = 30720;
const std::string service_name = "backend/neo-prod-ccapi-inner-lb:http";

bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

// Client, node and pod namespaces linked by veth (the wiring of the iptables proxier's test):
// client 198.51.100.10 -> node 198.51.100.1 | node 203.0.113.1 -> pod 203.0.113.10.
struct nodeport_lab {
  lab::netns client = lab::netns::create("client");
  lab::netns node = lab::netns::create("node");
  lab::netns pod = lab::netns::create("pod");
  net::io_context io{1};

  nodeport_lab() {
    run_ok(client, {"ip", "link", "add", "cl0", "type", "veth", "peer", "name", "nd0", "netns",
                    node.proc_path()});
    run_ok(node, {"ip", "link", "add", "nd1", "type", "veth", "peer", "name", "be0", "netns",
                  pod.proc_path()});
    run_ok(client, {"ip", "addr", "add", "198.51.100.10/24", "dev", "cl0"});
    run_ok(client, {"ip", "link", "set", "cl0", "up"});
    run_ok(node, {"ip", "addr", "add", "198.51.100.1/24", "dev", "nd0"});
    run_ok(node, {"ip", "link", "set", "nd0", "up"});
    run_ok(node, {"ip", "addr", "add", "203.0.113.1/24", "dev", "nd1"});
    run_ok(node, {"ip", "link", "set", "nd1", "up"});
    run_ok(pod, {"ip", "addr", "add", "203.0.113.10/24", "dev", "be0"});
    run_ok(pod, {"ip", "link", "set", "be0", "up"});
    run_ok(client, {"ip", "route", "add", "default", "via", "198.51.100.1"});
    run_ok(pod, {"ip", "route", "add", "default", "via", "203.0.113.1"});
    lab::write_sysctl(node, "net.ipv4.ip_forward", "1");
    // Hang guard: a dropped SYN fails connect() within about 3 s.
    lab::write_sysctl(client, "net.ipv4.tcp_syn_retries", "1");
  }

  /// A pod listening on 203.0.113.10:8080.
  tcp::acceptor backend() {
    tcp::acceptor a(io);
    lab::netns_scope in(pod);
    a.open(tcp::v4());
    a.set_option(net::socket_base::reuse_address(true));
    a.bind(tcp::endpoint(net::ip::make_address_v4("203.0.113.10"), 8080));
    a.listen(16);
    return a;
  }

  /// Connects from the client namespace to the node's NodePort (non-blocking, as in the
  /// iptables test: an ICMP answer is then reported at once).
  boost::system::error_code connect(tcp::socket& s) {
    {
      lab::netns_scope in(client);
      s.open(tcp::v4());
    }
    s.non_blocking(true);
    boost::system::error_code ec;
    s.connect(tcp::endpoint(net::ip::make_address_v4("198.51.100.1"), node_port), ec);
    s.non_blocking(false);
    return ec;
  }

  void run_io(std::chrono::milliseconds limit = 2s) {
    io.restart();
    io.run_for(limit);
  }
};

std::vector<service_endpoints> one_service(std::vector<tcp::endpoint> endpoints) {
  service_endpoints s;
  s.service = service_name;
  s.node_port = node_port;
  s.port = 80;
  s.cluster_ip = "10.96.18.20";
  s.endpoints = std::move(endpoints);
  return {s};
}

tcp::endpoint pod_endpoint() {
  return {net::ip::make_address_v4("203.0.113.10"), 8080};
}

scenario::proxy_spec spec_for(scenario::proxy_preset version) {
  scenario::proxy_spec spec;
  spec.mode = scenario::proxy_mode::nftables;
  spec.preset = version;
  spec.sync_delay_ms = 0;
  return spec;
}

// A request through the NodePort reaches the pod, masqueraded, and its answer comes back.
::testing::AssertionResult served_by_backend(nodeport_lab& lab, tcp::acceptor& backend) {
  tcp::socket client(lab.io);
  if (auto ec = lab.connect(client)) return ::testing::AssertionFailure() << "connect: " << ec;
  net::write(client, net::buffer(std::string("ping")));
  if (!wait_readable(backend.native_handle(), 2s))
    return ::testing::AssertionFailure() << "nothing reached the pod";
  tcp::socket conn = backend.accept();
  // mark-for-masquerade + masquerading: the pod sees the node's address.
  if (conn.remote_endpoint().address().to_string() != "203.0.113.1")
    return ::testing::AssertionFailure() << "pod saw peer " << conn.remote_endpoint();
  std::string got(4, '\0');
  net::read(conn, net::buffer(got));
  net::write(conn, net::buffer(std::string("pong")));
  if (!wait_readable(client.native_handle(), 2s))
    return ::testing::AssertionFailure() << "no answer";
  std::string answer(4, '\0');
  net::read(client, net::buffer(answer));
  if (got != "ping" || answer != "pong")
    return ::testing::AssertionFailure() << "got '" << got << "', answer '" << answer << "'";
  return ::testing::AssertionSuccess();
}

// `nft list table` parsed: each chain's rules, each map's or set's element keys.
struct listed_table {
  std::map<std::string, std::vector<std::string>> chains;
  std::map<std::string, std::set<std::string>> elements;
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  std::size_t b = s.find_first_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b);
}

listed_table parse_listing(const std::string& text) {
  listed_table t;
  std::istringstream in(text);
  std::string kind, name, elements;
  bool in_elements = false;
  for (std::string line; std::getline(in, line);) {
    const std::string l = trim(line);
    if (line.rfind("\tchain ", 0) == 0 || line.rfind("\tmap ", 0) == 0 ||
        line.rfind("\tset ", 0) == 0) {
      std::istringstream w(l);
      w >> kind >> name;
      if (kind == "chain")
        t.chains[name];
      else
        t.elements[name];
      continue;
    }
    if (kind == "chain" && line.rfind("\t\t", 0) == 0 && line.rfind("\t\t\t", 0) != 0 &&
        l.rfind("type ", 0) != 0 && l.rfind("comment ", 0) != 0)
      t.chains[name].push_back(l);
    if (kind != "chain" && l.rfind("elements = {", 0) == 0) {
      in_elements = true;
      elements.clear();
    }
    if (in_elements) {
      elements += " " + l;
      if (l.find('}') != std::string::npos && l.back() == '}') {
        in_elements = false;
        auto body = elements.substr(elements.find('{') + 1);
        body = body.substr(0, body.rfind('}'));
        std::istringstream items(body);
        for (std::string item; std::getline(items, item, ',');) {
          // "tcp . 30720 comment "x" : goto chain" -> "tcp . 30720"
          auto key = item.substr(0, std::min(item.find(" comment "), item.find(" : ")));
          t.elements[name].insert(trim(key));
        }
      }
    }
  }
  return t;
}

// The kernel is the oracle: the same chains, as many rules in each, the same element keys;
// and rules nft prints as kube-proxy writes them, word for word.
void expect_listing_matches(const std::string& listing, const nftables::sync_plan& plan) {
  auto listed = parse_listing(listing);
  std::set<std::string> listed_chains, planned_chains;
  for (const auto& [c, rules] : listed.chains)
    listed_chains.insert(c);
  for (const auto& [c, rules] : plan.chains)
    planned_chains.insert(c);
  EXPECT_EQ(listed_chains, planned_chains) << listing;
  for (const auto& [c, rules] : plan.chains) {
    auto it = listed.chains.find(c);
    if (it == listed.chains.end()) continue;
    EXPECT_EQ(it->second.size(), rules.size()) << c << "\n" << listing;
    for (std::size_t i = 0; i < rules.size() && i < it->second.size(); ++i) {
      if (rules[i].find("numgen") != std::string::npos ||
          rules[i].find("dnat to") != std::string::npos ||
          rules[i].find("vmap @") != std::string::npos || rules[i].find("jump ") == 0) {
        EXPECT_EQ(it->second[i], rules[i]) << c;
      }
    }
  }
  for (const auto& [m, keys] : plan.elements)
    EXPECT_EQ(listed.elements[m], keys) << m << "\n" << listing;
}

std::string tables_of(const lab::netns* ns) {
  auto r = lab::run_command(ns, {"nft", "list", "tables"});
  EXPECT_EQ(r.exit_status, 0) << r.err;
  return r.out;
}

class nftables_proxier_test : public ::testing::TestWithParam<scenario::proxy_preset> {};

TEST_P(nftables_proxier_test, with_an_endpoint_node_port_is_dnated_and_nothing_listens) {
  BACKLOG_LAB_REQUIRE_LAB();
  const std::string host_tables = tables_of(nullptr);
  nodeport_lab lab;
  auto backend = lab.backend();
  auto services = one_service({pod_endpoint()});
  auto proxier = make_nftables_proxier(lab.io, lab.node, spec_for(GetParam()), services);
  proxier->start();

  nftables::rule_options options;
  options.version = GetParam();
  auto plan = nftables::render_sync(services, options);
  auto listing = proxier->rules_listing();
  EXPECT_EQ(listing, run_ok(lab.node, {"nft", "list", "table", "ip", "kube-proxy"}));
  expect_listing_matches(listing, plan);

  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(served_by_backend(lab, backend));
  EXPECT_EQ(run_ok(lab.node, {"ss", "-Hltn", "sport = :30720"}), "");
  EXPECT_EQ(run_ok(lab.node, {"ss", "-Htan", "sport = :30720"}), "");
  EXPECT_EQ(proxier->stats().rule_syncs, 1u);

  // Stop deletes the table; the host's tables were never touched.
  proxier->stop();
  EXPECT_EQ(tables_of(&lab.node).find("kube-proxy"), std::string::npos);
  EXPECT_EQ(tables_of(nullptr), host_tables);
}

TEST_P(nftables_proxier_test, without_endpoints_connections_are_refused_and_nothing_queues) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto services = one_service({});
  auto proxier = make_nftables_proxier(lab.io, lab.node, spec_for(GetParam()), services);
  proxier->start();
  nftables::rule_options options;
  options.version = GetParam();
  expect_listing_matches(proxier->rules_listing(), nftables::render_sync(services, options));

  for (int i = 0; i < 3; ++i) {
    tcp::socket client(lab.io);
    // `reject` answers the SYN with ICMP port-unreachable: connect() fails with ECONNREFUSED.
    EXPECT_EQ(lab.connect(client), net::error::connection_refused);
  }
  EXPECT_EQ(testing::nstat_counter(lab.client, "IcmpInDestUnreachs").value_or(-1), 3);
  EXPECT_EQ(testing::nstat_counter(lab.node, "TcpPassiveOpens").value_or(-1), 0);
  EXPECT_EQ(testing::nstat_counter(lab.node, "TcpExtListenDrops").value_or(0), 0);
  EXPECT_EQ(run_ok(lab.node, {"ss", "-Htan", "sport = :30720"}), "");
}

TEST_P(nftables_proxier_test, endpoint_changes_are_applied_in_one_transaction_each) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto backend = lab.backend();
  auto proxier = make_nftables_proxier(lab.io, lab.node, spec_for(GetParam()), one_service({}));
  proxier->start();
  {
    tcp::socket client(lab.io);
    EXPECT_EQ(lab.connect(client), net::error::connection_refused);
  }
  proxier->update_endpoints(service_name, {pod_endpoint()});
  lab.run_io();
  EXPECT_EQ(proxier->stats().rule_syncs, 2u);
  EXPECT_TRUE(served_by_backend(lab, backend));
  auto listing = proxier->rules_listing();
  EXPECT_NE(listing.find("dnat to 203.0.113.10:8080"), std::string::npos) << listing;

  // Back to none: refused again; the endpoint chains are flushed, then deleted a second later.
  proxier->update_endpoints(service_name, {});
  lab.run_io();
  tcp::socket client(lab.io);
  EXPECT_EQ(lab.connect(client), net::error::connection_refused);
  listing = proxier->rules_listing();
  EXPECT_EQ(listing.find("dnat to"), std::string::npos) << listing;
  std::this_thread::sleep_for(1100ms);
  proxier->update_endpoints(service_name, {});
  lab.run_io();
  listing = proxier->rules_listing();
  EXPECT_EQ(listing.find("chain endpoint-"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("chain service-" + nftables::service_chain_base(service_name)),
            std::string::npos)
      << listing;
  EXPECT_EQ(proxier->stats().rule_sync_failures, 0u) << proxier->stats().sync_errors.front();
}

TEST_P(nftables_proxier_test, affinity_sets_and_a_local_policy_are_accepted_by_the_kernel) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto backend = lab.backend();
  auto services = one_service({pod_endpoint()});
  service_endpoints local;
  local.service = "backend/local-only:http";
  local.node_port = 30721;
  local.cluster_ip = "10.96.18.21";
  local.external_policy_local = true;
  local.other_node_endpoints = {{net::ip::make_address_v4("10.244.1.10"), 8080}};
  services.push_back(local);
  auto spec = spec_for(GetParam());
  spec.session_affinity = scenario::session_affinity::client_ip;
  spec.affinity_timeout_s = 600;
  auto proxier = make_nftables_proxier(lab.io, lab.node, spec, services);
  proxier->start();
  auto options = nftables::make_rule_options(spec);
  auto listing = proxier->rules_listing();
  expect_listing_matches(listing, nftables::render_sync(services, options));
  const std::string set =
      "set affinity-" + nftables::endpoint_chain_base(service_name, pod_endpoint());
  EXPECT_NE(listing.find(set), std::string::npos) << listing;
  EXPECT_NE(listing.find("timeout 10m"), std::string::npos) << listing;
  EXPECT_TRUE(served_by_backend(lab, backend));
}

INSTANTIATE_TEST_SUITE_P(presets, nftables_proxier_test,
                         ::testing::Values(scenario::proxy_preset::v1_29,
                                           scenario::proxy_preset::v1_33),
                         [](const auto& info) {
                           return info.param == scenario::proxy_preset::v1_29
                                      ? std::string("v1_29")
                                      : std::string("v1_33");
                         });

TEST(nftables_proxier, the_dispatch_builds_it_and_refuses_an_iptables_preset) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto spec = spec_for(scenario::proxy_preset::v1_33);
  EXPECT_NE(make_proxier(lab.io, lab.node, spec, one_service({}), 1), nullptr);
  spec.preset = scenario::proxy_preset::v1_5;
  EXPECT_THROW(make_proxier(lab.io, lab.node, spec, one_service({}), 1), input_error);
}

} // namespace
} // namespace backlog_lab::proxy_sim
