// The nftables proxier on a real kernel: what `nft list table ip kube-proxy` shows compared with
// what was rendered, traffic through three namespaces (client -> node -> pod).
#include <poll.h>

#include <algorithm>
#include <array>
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
#include "tests/support/nodeport_lab.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::proxy_sim {
namespace {

using testing::run_ok;
using namespace std::chrono_literals;

constexpr uint16_t node_port = 30720;
const std::string service_name = "backend/neo-prod-ccapi-inner-lb:http";

using testing::nodeport_lab;
using testing::served_by_backend;
using testing::wait_readable;

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
  auto proxier = make_nftables_proxier(lab.io, lab.node, spec_for(GetParam()), services, 1);
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
  auto proxier = make_nftables_proxier(lab.io, lab.node, spec_for(GetParam()), services, 1);
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
  auto proxier = make_nftables_proxier(lab.io, lab.node, spec_for(GetParam()), one_service({}), 1);
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
  auto proxier = make_nftables_proxier(lab.io, lab.node, spec, services, 1);
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

// ClientIP affinity: the endpoint chain adds the client to its `affinity-*` set, and the
// service chain sends every later connection of that client there; without it the same 20
// connections spread over both endpoints (odds of not: 2 in 2^20).
TEST_P(nftables_proxier_test, client_ip_affinity_keeps_a_client_on_one_endpoint) {
  BACKLOG_LAB_REQUIRE_LAB();
  const tcp::endpoint other{net::ip::make_address_v4("203.0.113.11"), 8080};
  for (bool affinity : {true, false}) {
    SCOPED_TRACE(affinity ? "ClientIP" : "None");
    nodeport_lab lab;
    lab.add_pod_address("203.0.113.11");
    auto first = lab.backend();
    auto second = lab.backend(8080, "203.0.113.11");
    auto spec = spec_for(GetParam());
    if (affinity) {
      spec.session_affinity = scenario::session_affinity::client_ip;
      spec.affinity_timeout_s = 600;
    }
    auto proxier =
        make_nftables_proxier(lab.io, lab.node, spec, one_service({pod_endpoint(), other}), 1);
    proxier->start();
    auto [a, b] = testing::spread_over(lab, first, second, 20);
    EXPECT_EQ(a + b, 20);
    if (!affinity) {
      EXPECT_GT(a, 0);
      EXPECT_GT(b, 0);
      continue;
    }
    EXPECT_TRUE(a == 0 || b == 0) << a << " / " << b;
    // The kernel's set holds the client, in the chosen endpoint's set only.
    const tcp::endpoint chosen = a > 0 ? pod_endpoint() : other;
    const tcp::endpoint unused = a > 0 ? other : pod_endpoint();
    auto set_of = [&](const tcp::endpoint& e) {
      return run_ok(lab.node, {"nft", "list", "set", "ip", "kube-proxy",
                               "affinity-" + nftables::endpoint_chain_base(service_name, e)});
    };
    EXPECT_NE(set_of(chosen).find("elements = { 198.51.100.10 expires "), std::string::npos)
        << set_of(chosen);
    EXPECT_EQ(set_of(unused).find("198.51.100.10"), std::string::npos) << set_of(unused);
  }
}

INSTANTIATE_TEST_SUITE_P(presets, nftables_proxier_test,
                         ::testing::Values(scenario::proxy_preset::v1_29,
                                           scenario::proxy_preset::v1_33,
                                           scenario::proxy_preset::v1_37),
                         [](const auto& info) {
                           return "v" +
                                  std::string(scenario::name_of(info.param)).replace(1, 1, "_");
                         });

TEST(nftables_proxier, the_dispatch_builds_it_and_refuses_an_iptables_preset) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto spec = spec_for(scenario::proxy_preset::v1_33);
  EXPECT_NE(make_proxier(lab.io, lab.node, spec, one_service({}), 1), nullptr);
  spec.preset = scenario::proxy_preset::v1_5;
  EXPECT_THROW(make_proxier(lab.io, lab.node, spec, one_service({}), 1), input_error);
}

// A socket of the node namespace dialling 127.0.0.1:port, as a node-local program does.
boost::system::error_code connect_on_node(nodeport_lab& lab, tcp::socket& s, uint16_t port) {
  {
    lab::netns_scope in(lab.node);
    s.open(tcp::v4());
  }
  s.non_blocking(true);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(net::ip::address_v4::loopback(), port), ec);
  if (ec == net::error::would_block || ec == net::error::in_progress) {
    if (::poll(std::array{pollfd{s.native_handle(), POLLOUT, 0}}.data(), 1, 2000) != 1)
      return net::error::timed_out;
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(s.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len);
    ec = boost::system::error_code(err, boost::system::system_category());
  }
  s.non_blocking(false);
  return ec;
}

// Runs the proxier's handlers until `done` or the hang guard.
template <class F> bool run_until(nodeport_lab& lab, F done) {
  for (auto until = std::chrono::steady_clock::now() + 3s;
       std::chrono::steady_clock::now() < until;) {
    lab.run_io(10ms);
    if (done()) return true;
  }
  return done();
}

std::string loopback_listener(nodeport_lab& lab) {
  return run_ok(lab.node, {"ss", "-Hltn", "sport = :30720"});
}

scenario::proxy_spec localhost_spec() {
  auto spec = spec_for(scenario::proxy_preset::v1_37);
  spec.localhost_node_ports = true;
  return spec;
}

TEST(nftables_localhost_node_ports, listens_on_loopback_while_the_service_has_endpoints) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto backend = lab.backend();
  auto proxier = make_nftables_proxier(lab.io, lab.node, localhost_spec(), one_service({}), 7);
  proxier->start();
  // No endpoints: no listener, and 127.0.0.1:30720 is refused.
  EXPECT_EQ(loopback_listener(lab), "");
  {
    tcp::socket c(lab.io);
    EXPECT_EQ(connect_on_node(lab, c, node_port), net::error::connection_refused);
  }

  proxier->update_endpoints(service_name, {pod_endpoint()});
  lab.run_io(); // the sync (delay 0)
  // `ss` is the oracle: one listener, on loopback only, with Go's backlog (somaxconn).
  const std::string somaxconn = lab::read_sysctl(lab.node, "net.core.somaxconn");
  const std::string listing = loopback_listener(lab);
  EXPECT_EQ(std::count(listing.begin(), listing.end(), '\n'), 1) << listing;
  std::istringstream row(listing);
  std::string state, recv_q, send_q, local;
  row >> state >> recv_q >> send_q >> local;
  EXPECT_EQ(state, "LISTEN");
  EXPECT_EQ(send_q, somaxconn);
  EXPECT_EQ(local, "127.0.0.1:30720");

  // A node-local request goes through the proxy to the pod, and the answer comes back.
  tcp::socket c(lab.io);
  ASSERT_FALSE(connect_on_node(lab, c, node_port));
  net::write(c, net::buffer(std::string("ping")));
  ASSERT_TRUE(run_until(lab, [&] { return wait_readable(backend.native_handle(), 0ms); }));
  tcp::socket conn = backend.accept();
  EXPECT_EQ(conn.remote_endpoint().address().to_string(), "203.0.113.1"); // dialled by the node
  ASSERT_TRUE(run_until(lab, [&] { return conn.available() >= 4; }));
  std::string got(4, '\0');
  net::read(conn, net::buffer(got));
  EXPECT_EQ(got, "ping");
  net::write(conn, net::buffer(std::string("pong")));
  ASSERT_TRUE(run_until(lab, [&] { return c.available() >= 4; }));
  std::string answer(4, '\0');
  net::read(c, net::buffer(answer));
  EXPECT_EQ(answer, "pong");
  auto st = proxier->stats();
  EXPECT_EQ(st.accepted, 1u);
  EXPECT_EQ(st.dial_attempts, 1u);
  EXPECT_EQ(st.bytes_to_backend, 4u);
  EXPECT_EQ(st.bytes_to_client, 4u);
  // Remote clients still go by DNAT, beside the proxy.
  EXPECT_TRUE(served_by_backend(lab, backend));

  // Endpoints gone: the next sync closes the listener and the connection it carried.
  proxier->update_endpoints(service_name, {});
  lab.run_io();
  EXPECT_EQ(loopback_listener(lab), "");
  ASSERT_TRUE(run_until(lab, [&] { return wait_readable(c.native_handle(), 0ms); }));
  boost::system::error_code ec;
  c.read_some(net::buffer(answer), ec);
  EXPECT_EQ(ec, net::error::eof);
  tcp::socket late(lab.io);
  EXPECT_EQ(connect_on_node(lab, late, node_port), net::error::connection_refused);
  proxier->stop();
}

TEST(nftables_localhost_node_ports, accepts_every_queued_connection_and_closes_failed_dials) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto backend = lab.backend();
  // Nothing listens on 8081: every dial is refused, and its client is closed.
  auto proxier =
      make_nftables_proxier(lab.io, lab.node, localhost_spec(),
                            one_service({{net::ip::make_address_v4("203.0.113.10"), 8081}}), 7);
  proxier->start();
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back(lab.io);
    ASSERT_FALSE(connect_on_node(lab, clients.back(), node_port));
  }
  // Before the proxy runs, the kernel queued all 20: `ss` shows Recv-Q 20.
  std::istringstream before(loopback_listener(lab));
  std::string state, recv_q;
  before >> state >> recv_q;
  EXPECT_EQ(recv_q, "20");
  // One readiness event empties the queue (Go's accept loop does not wait for dials).
  ASSERT_TRUE(run_until(lab, [&] { return proxier->stats().accepted == 20; }));
  std::istringstream after(loopback_listener(lab));
  after >> state >> recv_q;
  EXPECT_EQ(recv_q, "0");
  ASSERT_TRUE(run_until(lab, [&] { return proxier->stats().dial_failures == 20; }));
  EXPECT_EQ(proxier->stats().dial_attempts, 20u);
  for (auto& c : clients) {
    ASSERT_TRUE(wait_readable(c.native_handle(), 2s));
    char b;
    boost::system::error_code ec;
    c.read_some(net::buffer(&b, 1), ec);
    EXPECT_EQ(ec, net::error::eof); // closed, not reset: Go's clientConn.Close()
  }
  // The proxy kept none of them: its side of each is closed (FIN-WAIT-2), none established.
  EXPECT_EQ(run_ok(lab.node, {"ss", "-Htn", "state", "established", "sport = :30720"}), "");
}

TEST(nftables_localhost_node_ports, is_off_without_the_gate) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto backend = lab.backend();
  auto proxier = make_nftables_proxier(lab.io, lab.node, spec_for(scenario::proxy_preset::v1_37),
                                       one_service({pod_endpoint()}), 7);
  proxier->start();
  EXPECT_EQ(loopback_listener(lab), "");
  tcp::socket c(lab.io);
  // nftables leaves 127.0.0.0/8 alone: with nothing listening, the kernel refuses.
  EXPECT_EQ(connect_on_node(lab, c, node_port), net::error::connection_refused);
  EXPECT_TRUE(served_by_backend(lab, backend));
}

} // namespace
} // namespace backlog_lab::proxy_sim
