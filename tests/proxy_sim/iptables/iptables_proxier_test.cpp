// The iptables proxier on a real kernel: rules checked against `iptables -S`, traffic through
// three namespaces (client -> node -> pod) as in docs/reference/kernel.md section 7.

#include <gtest/gtest.h>
#include <sstream>
#include <thread>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/sysctl.hpp"
#include "proxy_sim/iptables/iptables_proxier.hpp"
#include "proxy_sim/iptables/rules.hpp"
#include "tests/support/incident_report.hpp"
#include "tests/support/kernel_view.hpp"
#include "tests/support/nodeport_lab.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::proxy_sim {
namespace {

using testing::run_ok;
using namespace std::chrono_literals;

constexpr uint16_t node_port = 30720;
const std::string service_name = "backend/neo-prod-ccapi-inner-lb:http";

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : split_lines(text))
    if (l == line) return true;
  return false;
}

using ss_entry = testing::ss_socket;

std::vector<ss_entry> sockets_on_port(const lab::netns& ns, uint16_t port) {
  return testing::on_port(testing::ss_sockets(ns, "-tane"), port);
}

std::vector<ss_entry> in_state(const std::vector<ss_entry>& all, const std::string& state) {
  std::vector<ss_entry> out;
  for (const auto& e : all)
    if (e.state == state) out.push_back(e);
  return out;
}

using testing::nodeport_lab;
using testing::served_by_backend;
using testing::wait_readable;

// The held listener on the NodePort as `ss` shows it; state empty if there is none.
ss_entry held_listener(nodeport_lab& lab) {
  for (const auto& e : sockets_on_port(lab.node, node_port))
    if (e.state == "LISTEN") return e;
  return {};
}

std::vector<service_endpoints> one_service(std::vector<tcp::endpoint> endpoints) {
  service_endpoints s;
  s.service = service_name;
  s.node_port = node_port;
  s.endpoints = std::move(endpoints);
  return {s};
}

tcp::endpoint pod_endpoint() {
  return {net::ip::make_address_v4("203.0.113.10"), 8080};
}

scenario::proxy_spec spec_for(scenario::proxy_preset version, uint32_t sync_delay_ms = 0) {
  scenario::proxy_spec spec;
  spec.mode = scenario::proxy_mode::iptables;
  spec.preset = version;
  spec.sync_delay_ms = sync_delay_ms;
  return spec;
}

// A client that connects, sends `bytes` and closes, as the front proxies of the report did.
void send_and_close(nodeport_lab& lab, std::size_t bytes) {
  tcp::socket client(lab.io);
  auto ec = lab.connect(client);
  ASSERT_FALSE(ec) << ec.message();
  net::write(client, net::buffer(std::string(bytes, 'x')));
  client.close();
}

// Waits for `count` CLOSE-WAIT children on the NodePort; returns them.
std::vector<ss_entry> wait_close_wait(nodeport_lab& lab, std::size_t count) {
  auto deadline = std::chrono::steady_clock::now() + 3s;
  std::vector<ss_entry> found;
  do {
    found = in_state(sockets_on_port(lab.node, node_port), "CLOSE-WAIT");
    if (found.size() >= count) break;
    std::this_thread::sleep_for(20ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return found;
}

TEST(iptables_proxier, with_an_endpoint_node_port_is_dnated_and_held_socket_stays_empty) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto backend = lab.backend();
  auto proxier = make_iptables_proxier(lab.io, lab.node, spec_for(scenario::proxy_preset::v1_5),
                                       one_service({pod_endpoint()}));
  proxier->start();

  const std::string svc = "KUBE-SVC-RK4J2BHJ4QTMGP2E"; // as in the incident report
  const std::string sep = iptables::endpoint_chain_name(service_name, "tcp", "203.0.113.10:8080");
  auto listing = proxier->rules_listing();
  EXPECT_EQ(listing, run_ok(lab.node, {"iptables", "-t", "nat", "-S"}));
  for (const std::string& line : std::vector<std::string>{
           "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
           "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
           "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j "
           "KUBE-POSTROUTING",
           "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
           "-A KUBE-NODEPORTS -p tcp -m comment --comment \"" + service_name +
               "\" -m tcp --dport 30720 -j KUBE-MARK-MASQ",
           "-A KUBE-NODEPORTS -p tcp -m comment --comment \"" + service_name +
               "\" -m tcp --dport 30720 -j " + svc,
           "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must "
           "be "
           "the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
           "-A " + svc + " -m comment --comment \"" + service_name + "\" -j " + sep,
           "-A " + sep + " -s 203.0.113.10/32 -m comment --comment \"" + service_name +
               "\" -j KUBE-MARK-MASQ",
           "-A " + sep + " -p tcp -m comment --comment \"" + service_name +
               "\" -m tcp -j DNAT --to-destination 203.0.113.10:8080"})
    EXPECT_TRUE(has_line(listing, line)) << line << "\n--- listing:\n" << listing;

  auto held = held_listener(lab);
  EXPECT_EQ(held.state, "LISTEN");
  EXPECT_EQ(held.local, "*:30720"); // [::]:30720, dual stack
  EXPECT_EQ(held.send_q, 128u);     // backlog = the node's somaxconn
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(served_by_backend(lab, backend));
  held = held_listener(lab);
  EXPECT_EQ(held.recv_q, 0u);
  EXPECT_TRUE(in_state(sockets_on_port(lab.node, node_port), "CLOSE-WAIT").empty());
  EXPECT_EQ(proxier->stats().rule_syncs, 1u);
}

TEST(iptables_proxier, v1_5_without_endpoints_queues_connections_in_the_held_socket) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto proxier = make_iptables_proxier(lab.io, lab.node, spec_for(scenario::proxy_preset::v1_5),
                                       one_service({}));
  proxier->start();
  auto listing = proxier->rules_listing();
  EXPECT_TRUE(has_line(listing, "-N KUBE-SVC-RK4J2BHJ4QTMGP2E")) << listing;
  EXPECT_EQ(listing.find("DNAT"), std::string::npos) << listing;
  EXPECT_EQ(run_ok(lab.node, {"iptables", "-S"}).find("REJECT"), std::string::npos);

  for (int i = 0; i < 3; ++i)
    send_and_close(lab, 30);
  auto children = wait_close_wait(lab, 3);
  ASSERT_EQ(children.size(), 3u);
  for (const auto& c : children) {
    EXPECT_EQ(c.recv_q, 31u); // 30 request bytes + the FIN
    EXPECT_EQ(c.inode, 0u);   // never accepted
    EXPECT_EQ(c.local, "[::ffff:198.51.100.1]:30720");
  }
  auto held = held_listener(lab);
  EXPECT_EQ(held.recv_q, 3u);
  EXPECT_EQ(held.send_q, 128u);

  // stop() closes the held socket, which resets its queue, and removes every chain of ours.
  proxier->stop();
  EXPECT_TRUE(sockets_on_port(lab.node, node_port).empty());
  EXPECT_EQ(run_ok(lab.node, {"iptables", "-t", "nat", "-S"}).find("KUBE-"), std::string::npos);
  EXPECT_EQ(run_ok(lab.node, {"iptables", "-S"}).find("KUBE-"), std::string::npos);
}

TEST(iptables_proxier, v1_6_5_without_endpoints_rejects_and_nothing_queues) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto proxier = make_iptables_proxier(lab.io, lab.node, spec_for(scenario::proxy_preset::v1_6_5),
                                       one_service({}));
  proxier->start();
  auto filter = run_ok(lab.node, {"iptables", "-S"});
  EXPECT_TRUE(has_line(filter, "-A INPUT -m comment --comment \"kubernetes service portals\" -j "
                               "KUBE-SERVICES"))
      << filter;
  EXPECT_TRUE(has_line(filter, "-A KUBE-SERVICES -p tcp -m comment --comment \"" + service_name +
                                   " has no endpoints\" -m addrtype --dst-type LOCAL -m tcp "
                                   "--dport 30720 -j REJECT --reject-with icmp-port-unreachable"))
      << filter;

  for (int i = 0; i < 3; ++i) {
    tcp::socket client(lab.io);
    // ICMP port-unreachable in answer to a SYN: the kernel fails connect() with ECONNREFUSED.
    EXPECT_EQ(lab.connect(client), net::error::connection_refused);
  }
  EXPECT_EQ(testing::nstat_value(lab.client, "IcmpInDestUnreachs"), 3u);
  EXPECT_EQ(testing::nstat_value(lab.node, "TcpPassiveOpens"), 0u);
  auto held = held_listener(lab);
  EXPECT_EQ(held.state, "LISTEN"); // 1.6.5 still holds the port ...
  EXPECT_EQ(held.recv_q, 0u);      // ... but nothing reaches it
  EXPECT_EQ(sockets_on_port(lab.node, node_port).size(), 1u);
}

TEST(iptables_proxier, v1_20_holds_the_port_as_ipv4_and_rejects_in_external_services) {
  BACKLOG_LAB_REQUIRE_LAB();
  for (auto version : {scenario::proxy_preset::v1_20, scenario::proxy_preset::v1_6_5}) {
    SCOPED_TRACE(version == scenario::proxy_preset::v1_20 ? "1.20" : "1.6.5");
    nodeport_lab lab;
    auto proxier = make_iptables_proxier(lab.io, lab.node, spec_for(version), one_service({}));
    proxier->start();
    // What `ss` itself prints: net.Listen("tcp4", ":N") is 0.0.0.0:N, "tcp" is *:N.
    const std::string listed = run_ok(lab.node, {"ss", "-Hltn", "sport = :30720"});
    auto held = held_listener(lab);
    EXPECT_EQ(held.state, "LISTEN");
    if (version == scenario::proxy_preset::v1_20) {
      EXPECT_EQ(held.local, "0.0.0.0:30720");
      EXPECT_NE(listed.find("0.0.0.0:30720"), std::string::npos) << listed;
      auto filter = run_ok(lab.node, {"iptables", "-S"});
      EXPECT_TRUE(has_line(filter, "-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment \"" +
                                       service_name +
                                       " has no endpoints\" -m addrtype --dst-type LOCAL -m tcp "
                                       "--dport 30720 -j REJECT --reject-with "
                                       "icmp-port-unreachable"))
          << filter;
    } else {
      EXPECT_EQ(held.local, "*:30720");
      EXPECT_EQ(listed.find("0.0.0.0:30720"), std::string::npos) << listed;
    }
    tcp::socket client(lab.io);
    EXPECT_EQ(lab.connect(client), net::error::connection_refused);
    EXPECT_EQ(held_listener(lab).recv_q, 0u); // the REJECT keeps it empty
  }
}

TEST(iptables_proxier, v1_24_holds_no_port) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto backend = lab.backend();
  auto proxier = make_iptables_proxier(lab.io, lab.node, spec_for(scenario::proxy_preset::v1_24),
                                       one_service({}));
  proxier->start();
  EXPECT_EQ(run_ok(lab.node, {"ss", "-Hltn", "sport = :30720"}), "");
  tcp::socket client(lab.io);
  EXPECT_EQ(lab.connect(client), net::error::connection_refused);
  EXPECT_TRUE(sockets_on_port(lab.node, node_port).empty());

  proxier->update_endpoints(service_name, {pod_endpoint()});
  lab.run_io();
  EXPECT_EQ(proxier->stats().rule_syncs, 2u);
  EXPECT_TRUE(served_by_backend(lab, backend));
  EXPECT_EQ(run_ok(lab.node, {"ss", "-Hltn", "sport = :30720"}), "");
}

// A Local policy with endpoints only on other nodes: one connect from the client, as a number of
// what reached the node, the client and the held socket.
struct local_policy_outcome {
  boost::system::error_code connect;
  uint64_t client_icmp = 0, client_syn_retrans = 0, node_passive_opens = 0;
  std::string listing, filter;
};

local_policy_outcome connect_to_local_policy_service(scenario::proxy_preset version,
                                                     bool local_policy) {
  nodeport_lab lab;
  auto services = one_service({});
  services[0].external_policy_local = local_policy;
  services[0].other_node_endpoints = {{net::ip::make_address_v4("10.244.1.10"), 8080}};
  auto proxier = make_iptables_proxier(lab.io, lab.node, spec_for(version), services);
  proxier->start();
  local_policy_outcome out;
  out.listing = proxier->rules_listing();
  out.filter = run_ok(lab.node, {"iptables", "-S"});
  tcp::socket client(lab.io);
  out.connect = lab.connect(client); // the SYN and its one retransmission, ~3 s if dropped
  out.client_icmp = testing::nstat_value(lab.client, "IcmpInDestUnreachs");
  out.client_syn_retrans = testing::nstat_value(lab.client, "TcpExtTCPSynRetrans");
  out.node_passive_opens = testing::nstat_value(lab.node, "TcpPassiveOpens");
  if (iptables::holds_node_ports(version)) {
    auto held = held_listener(lab);
    EXPECT_EQ(held.state, "LISTEN");
    EXPECT_EQ(held.recv_q, 0u); // nothing ever queues on the held port
  }
  return out;
}

TEST(iptables_proxier, local_policy_without_a_local_endpoint_drops_syns_in_kube_xlb) {
  BACKLOG_LAB_REQUIRE_LAB();
  const std::string xlb = "KUBE-XLB-RK4J2BHJ4QTMGP2E"; // the KUBE-SVC chain's hash
  auto out = connect_to_local_policy_service(scenario::proxy_preset::v1_6_5, true);
  EXPECT_TRUE(has_line(out.listing, "-A KUBE-NODEPORTS -p tcp -m comment --comment \"" +
                                        service_name + "\" -m tcp --dport 30720 -j " + xlb))
      << out.listing;
  EXPECT_TRUE(has_line(out.listing, "-A " + xlb + " -m comment --comment \"" + service_name +
                                        " has no local endpoints\" -j KUBE-MARK-DROP"))
      << out.listing;
  EXPECT_TRUE(has_line(out.listing, "-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000"));
  EXPECT_TRUE(has_line(out.filter, "-A KUBE-FIREWALL -m comment --comment \"kubernetes firewall "
                                   "for dropping marked packets\" -m mark --mark 0x8000/0x8000 "
                                   "-j DROP"))
      << out.filter;
  EXPECT_TRUE(has_line(out.filter, "-A INPUT -j KUBE-FIREWALL")) << out.filter;
  // The Service has an endpoint, so no REJECT: the SYNs are dropped, the client times out.
  EXPECT_EQ(out.filter.find("REJECT"), std::string::npos) << out.filter;
  EXPECT_EQ(out.connect, net::error::timed_out) << out.connect.message();
  EXPECT_EQ(out.client_icmp, 0u);
  EXPECT_GE(out.client_syn_retrans, 1u);
  EXPECT_EQ(out.node_passive_opens, 0u);
}

TEST(iptables_proxier, later_proxier_drops_no_local_endpoint_traffic_in_filter) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto out = connect_to_local_policy_service(scenario::proxy_preset::v1_24, true);
  const std::string ext = "KUBE-EXT-RK4J2BHJ4QTMGP2E";
  EXPECT_TRUE(has_line(out.listing, "-A KUBE-NODEPORTS -p tcp -m comment --comment \"" +
                                        service_name + "\" -m tcp --dport 30720 -j " + ext))
      << out.listing;
  EXPECT_TRUE(has_line(out.filter, "-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment \"" +
                                       service_name +
                                       " has no local endpoints\" -m addrtype --dst-type LOCAL "
                                       "-m tcp --dport 30720 -j DROP"))
      << out.filter;
  EXPECT_EQ(out.listing.find("KUBE-MARK-DROP"), std::string::npos) << out.listing;
  EXPECT_EQ(out.connect, net::error::timed_out) << out.connect.message();
  EXPECT_EQ(out.client_icmp, 0u);
  EXPECT_EQ(out.node_passive_opens, 0u);
}

TEST(iptables_proxier, cluster_policy_sends_the_same_syns_to_the_other_node) {
  BACKLOG_LAB_REQUIRE_LAB();
  // The control: Cluster DNATs to 10.244.1.10, which this node cannot route: an ICMP error
  // answers the SYN at once, where Local dropped it silently.
  auto out = connect_to_local_policy_service(scenario::proxy_preset::v1_6_5, false);
  EXPECT_EQ(out.listing.find("KUBE-XLB-"), std::string::npos) << out.listing;
  EXPECT_NE(out.listing.find("--to-destination 10.244.1.10:8080"), std::string::npos);
  EXPECT_NE(out.connect, net::error::timed_out) << out.connect.message();
  EXPECT_GE(out.client_icmp, 1u);
}

// ClientIP affinity (`-m recent`): every connection of one client reaches the endpoint its first
// one did; without it the same 20 connections spread over both (odds of not: 2 in 2^20).
TEST(iptables_proxier, client_ip_affinity_keeps_a_client_on_one_endpoint) {
  BACKLOG_LAB_REQUIRE_LAB();
  for (auto version : {scenario::proxy_preset::v1_5, scenario::proxy_preset::v1_24}) {
    for (bool affinity : {true, false}) {
      SCOPED_TRACE(std::string(scenario::name_of(version)) + (affinity ? " ClientIP" : " None"));
      nodeport_lab lab;
      lab.add_pod_address("203.0.113.11");
      auto first = lab.backend();
      auto second = lab.backend(8080, "203.0.113.11");
      auto spec = spec_for(version);
      if (affinity) {
        spec.session_affinity = scenario::session_affinity::client_ip;
        spec.affinity_timeout_s = 600;
      }
      auto proxier = make_iptables_proxier(
          lab.io, lab.node, spec,
          one_service({pod_endpoint(), {net::ip::make_address_v4("203.0.113.11"), 8080}}));
      proxier->start();
      auto [a, b] = testing::spread_over(lab, first, second, 20);
      EXPECT_EQ(a + b, 20);
      if (affinity) {
        EXPECT_TRUE(a == 0 || b == 0) << a << " / " << b;
      } else {
        EXPECT_GT(a, 0);
        EXPECT_GT(b, 0);
      }
    }
  }
}

TEST(iptables_proxier, endpoint_changes_apply_after_the_sync_delay_coalesced) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto backend = lab.backend();
  auto proxier = make_iptables_proxier(
      lab.io, lab.node, spec_for(scenario::proxy_preset::v1_5, 300), one_service({pod_endpoint()}));
  proxier->start();

  // Scale to zero: until the sync runs, the old rules still DNAT.
  proxier->update_endpoints(service_name, {});
  EXPECT_NE(proxier->rules_listing().find("DNAT"), std::string::npos);
  EXPECT_TRUE(served_by_backend(lab, backend));
  lab.run_io();
  EXPECT_EQ(proxier->stats().rule_syncs, 2u);
  auto listing = proxier->rules_listing();
  EXPECT_EQ(listing.find("DNAT"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("KUBE-SEP-"), std::string::npos) << listing; // stale chain deleted

  // Now NodePort traffic falls through to the held socket.
  send_and_close(lab, 30);
  ASSERT_EQ(wait_close_wait(lab, 1).size(), 1u);
  EXPECT_EQ(held_listener(lab).recv_q, 1u);

  // Two changes inside one delay: one sync, the last state wins.
  proxier->update_endpoints(service_name, {});
  proxier->update_endpoints(service_name, {pod_endpoint()});
  lab.run_io();
  EXPECT_EQ(proxier->stats().rule_syncs, 3u);
  // The rule is back: the port serves although its held socket keeps a queued connection.
  EXPECT_TRUE(served_by_backend(lab, backend));
  EXPECT_EQ(held_listener(lab).recv_q, 1u);
}

// kubernetes#106713: endpoints added to a Service without any, under 1.6.5. The filter commit
// removes the REJECT; until the nat commit adds the DNAT, a SYN meets neither and lands in the
// held socket. nat_commit_delay_ms holds that gap open long enough to connect in it.
TEST(iptables_proxier, between_the_filter_and_nat_commits_connections_land_in_the_held_socket) {
  BACKLOG_LAB_REQUIRE_LAB();
  nodeport_lab lab;
  auto backend = lab.backend();
  auto spec = spec_for(scenario::proxy_preset::v1_6_5);
  spec.nat_commit_delay_ms = 1500; // generous: the test connects from this thread meanwhile
  auto proxier = make_iptables_proxier(lab.io, lab.node, spec, one_service({}));
  proxier->start();
  {
    tcp::socket refused(lab.io);
    EXPECT_EQ(lab.connect(refused), net::error::connection_refused);
  }
  proxier->update_endpoints(service_name, {pod_endpoint()});
  lab.io.restart();
  lab.io.run_for(200ms); // the sync timer: the filter section is committed, nat waits
  auto filter = run_ok(lab.node, {"iptables", "-S"});
  EXPECT_EQ(filter.find("REJECT"), std::string::npos) << filter;
  EXPECT_EQ(proxier->rules_listing().find("DNAT"), std::string::npos);
  send_and_close(lab, 30); // in the window: the kernel completes it on the held socket
  ASSERT_EQ(wait_close_wait(lab, 1).size(), 1u);
  EXPECT_EQ(held_listener(lab).recv_q, 1u);
  lab.run_io(3s); // the nat commit
  EXPECT_EQ(proxier->stats().rule_syncs, 2u);
  EXPECT_EQ(proxier->stats().rule_sync_failures, 0u);
  EXPECT_TRUE(served_by_backend(lab, backend));
  EXPECT_EQ(held_listener(lab).recv_q, 1u); // the one that fell in the gap stays, for good
}

TEST(iptables_proxier, without_a_held_port_the_same_gap_queues_nothing) {
  BACKLOG_LAB_REQUIRE_LAB();
  // The control: 1.24 holds no NodePort, so in the same gap the SYN meets no socket: RST.
  nodeport_lab lab;
  auto spec = spec_for(scenario::proxy_preset::v1_24);
  spec.nat_commit_delay_ms = 1500;
  auto proxier = make_iptables_proxier(lab.io, lab.node, spec, one_service({}));
  proxier->start();
  proxier->update_endpoints(service_name, {pod_endpoint()});
  lab.io.restart();
  lab.io.run_for(200ms);
  EXPECT_EQ(run_ok(lab.node, {"iptables", "-S"}).find("REJECT"), std::string::npos);
  tcp::socket client(lab.io);
  EXPECT_EQ(lab.connect(client), net::error::connection_refused);
  EXPECT_TRUE(sockets_on_port(lab.node, node_port).empty());
  lab.run_io(3s);
  EXPECT_EQ(proxier->stats().rule_syncs, 2u);
}

// A restore the kernel refuses: another nftables user made KUBE-MARK-MASQ a base chain in the
// node's `ip nat` table, which an iptables rule cannot jump to (EOPNOTSUPP at commit).
TEST(iptables_proxier, a_failed_restore_reverts_the_ports_it_opened_and_goes_on) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!lab::have_program("nft")) GTEST_SKIP() << "needs nft";
  nodeport_lab lab;
  auto backend = lab.backend();
  run_ok(lab.node, {"nft", "add", "table", "ip", "nat"});
  run_ok(lab.node, {"nft", "add", "chain", "ip", "nat", "KUBE-MARK-MASQ",
                    "{ type nat hook output priority 50; }"});
  auto proxier = make_iptables_proxier(lab.io, lab.node, spec_for(scenario::proxy_preset::v1_5),
                                       one_service({pod_endpoint()}));
  EXPECT_NO_THROW(proxier->start()); // kube-proxy logged it and kept running
  auto stats = proxier->stats();
  EXPECT_EQ(stats.rule_syncs, 0u);
  EXPECT_EQ(stats.rule_sync_failures, 1u);
  ASSERT_EQ(stats.sync_errors.size(), 1u);
  EXPECT_NE(stats.sync_errors[0].find("KUBE-MARK-MASQ"), std::string::npos) << stats.sync_errors[0];
  // The port this sync opened is closed again (revertPorts), and no nat rule of ours is in.
  EXPECT_TRUE(sockets_on_port(lab.node, node_port).empty());
  EXPECT_EQ(proxier->rules_listing().find("KUBE-NODEPORTS"), std::string::npos);
  // Filter was committed before nat failed (one commit per table).
  EXPECT_NE(run_ok(lab.node, {"iptables", "-S"}).find("-N KUBE-SERVICES"), std::string::npos);

  // The other user goes away; the next sync opens the port again and installs everything.
  run_ok(lab.node, {"nft", "delete", "chain", "ip", "nat", "KUBE-MARK-MASQ"});
  proxier->update_endpoints(service_name, {pod_endpoint()});
  lab.run_io();
  EXPECT_EQ(proxier->stats().rule_syncs, 1u);
  EXPECT_EQ(proxier->stats().rule_sync_failures, 1u);
  EXPECT_EQ(held_listener(lab).state, "LISTEN");
  EXPECT_TRUE(served_by_backend(lab, backend));
  // One jump each from the built-in chains, although filter's were committed twice over.
  auto filter = run_ok(lab.node, {"iptables", "-S", "OUTPUT"});
  EXPECT_EQ(std::count(filter.begin(), filter.end(), '\n'), 2) << filter; // -P and one -A
  proxier->stop();
  EXPECT_EQ(run_ok(lab.node, {"iptables", "-S"}).find("KUBE-"), std::string::npos);
  EXPECT_EQ(run_ok(lab.node, {"iptables", "-t", "nat", "-S"}).find("KUBE-"), std::string::npos);
}

using testing::report_probabilities; // tests/support/incident_report.hpp

TEST(iptables_proxier, forty_endpoints_list_the_report_probabilities) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto node = lab::netns::create("node");
  net::io_context io{1};
  std::vector<tcp::endpoint> endpoints;
  for (int i = 0; i < 40; ++i)
    endpoints.emplace_back(net::ip::make_address_v4("203.0.113." + std::to_string(10 + i)), 8080);
  auto services = one_service(endpoints);
  auto proxier = make_iptables_proxier(io, node, spec_for(scenario::proxy_preset::v1_5), services);
  proxier->start();

  const std::string svc = "KUBE-SVC-RK4J2BHJ4QTMGP2E";
  std::vector<std::string> listed;
  for (const auto& line : split_lines(proxier->rules_listing()))
    if (line.rfind("-A " + svc + " ", 0) == 0) listed.push_back(line);
  ASSERT_EQ(listed.size(), 40u);
  // Our own rendering, with the kernel's value in place of each %0.5f text.
  auto rendered = iptables::render_sync(services, iptables::rule_options{}).text;
  std::vector<std::string> expected;
  for (const auto& line : split_lines(rendered))
    if (line.rfind("-A " + svc + " ", 0) == 0) expected.push_back(line);
  ASSERT_EQ(expected.size(), 40u);
  for (std::size_t i = 0; i < 39; ++i) {
    auto text = iptables::probability_text(i, 40);
    auto at = expected[i].find("--probability " + text);
    ASSERT_NE(at, std::string::npos) << expected[i];
    expected[i].replace(at + 14, text.size(), report_probabilities[i]);
  }
  EXPECT_EQ(listed, expected);
  // Backlog -1 is the node's somaxconn, here the kernel default of a new namespace.
  EXPECT_EQ(sockets_on_port(node, node_port).at(0).send_q, 4096u);
}

TEST(iptables_proxier, a_restore_the_kernel_refuses_names_its_reason_and_line) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto node = lab::netns::create("node");
  net::io_context io{1};
  auto proxier = make_iptables_proxier(io, node, spec_for(scenario::proxy_preset::v1_24),
                                       one_service({pod_endpoint()}));
  proxier->start();
  // Someone else's rule jumps to the endpoint's chain: the sync that drops the endpoint cannot
  // delete its chain, and the kernel says why.
  const std::string sep = iptables::endpoint_chain_name(service_name, "tcp", "203.0.113.10:8080");
  run_ok(node, {"iptables", "-t", "nat", "-A", "OUTPUT", "-p", "udp", "-j", sep});
  proxier->update_endpoints(service_name, {});
  // The failed sync is counted and the run goes on (docs/proxy-iptables.md#a-failed-restore).
  auto deadline = std::chrono::steady_clock::now() + 30s; // a hang guard
  while (proxier->stats().rule_sync_failures == 0 && std::chrono::steady_clock::now() < deadline)
    io.run_for(20ms);
  auto st = proxier->stats();
  ASSERT_EQ(st.rule_sync_failures, 1u);
  ASSERT_EQ(st.sync_errors.size(), 1u);
  const std::string& msg = st.sync_errors[0];
  EXPECT_NE(msg.find("iptables-restore in namespace"), std::string::npos) << msg;
  EXPECT_NE(msg.find("failed: exit status"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stderr: iptables-restore"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[input: -X " + sep + "]"), std::string::npos) << msg;
  run_ok(node, {"iptables", "-t", "nat", "-D", "OUTPUT", "-p", "udp", "-j", sep});
}

TEST(iptables_proxier, the_mode_dispatch_refuses_an_exec_proxy) {
  lab::netns node = lab::netns::current();
  net::io_context io{1};
  auto spec = spec_for(scenario::proxy_preset::v1_5);
  spec.mode = scenario::proxy_mode::exec; // the runner starts the user's program instead
  try {
    make_proxier(io, node, spec, one_service({}), 1);
    FAIL() << "expected input_error";
  } catch (const input_error& e) {
    EXPECT_EQ(e.where(), "/proxy/mode");
  }
}

} // namespace
} // namespace backlog_lab::proxy_sim
