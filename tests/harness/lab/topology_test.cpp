#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness/core/error.hpp"
#include "harness/lab/sysctl.hpp"
#include "harness/lab/topology.hpp"
#include "tests/harness/lab/ip_view.hpp"
#include "tests/harness/lab/tcp_util.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::lab {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using testing::counter;
using testing::eventually;
using testing::find_link;
using testing::inet_addresses;
using testing::ip_json;
using testing::routes;
using testing::unique_fd;

bool is_up(const netns& ns, const std::string& link) {
  json l = find_link(ip_json(ns, {"link", "show"}), link);
  return !l.is_null() && l.at("operstate") == "UP";
}

std::set<unsigned long> inodes_of(const topology& t) {
  std::set<unsigned long> inodes;
  for (const netns* ns : t.namespaces())
    inodes.insert(ns->inode());
  return inodes;
}

TEST(topology, nodeport_wiring_matches_ip) {
  BACKLOG_LAB_REQUIRE_LAB();
  topology t = topology::build_nodeport(
      {2,
       3,
       {{"node", {{"net.core.somaxconn", "128"}}}, {"pods", {{"net.core.somaxconn", "64"}}}}});
  ASSERT_EQ(t.pod_count(), 3u);
  ASSERT_EQ(t.namespaces().size(), 5u);
  EXPECT_EQ(t.client_address(1), "198.51.100.11");
  EXPECT_EQ(t.pod_address(2), "203.0.113.12");

  // Clients: both addresses on one link, default route through the node.
  EXPECT_EQ(inet_addresses(find_link(ip_json(t.clients(), {"addr", "show"}), "bl-clients")),
            (std::vector<std::string>{"198.51.100.10/24", "198.51.100.11/24"}));
  EXPECT_EQ(routes(t.clients())["default"], "198.51.100.1@bl-clients");
  EXPECT_TRUE(is_up(t.clients(), "bl-clients"));

  // Node: uplink, bridge with every pod's veth as a port, forwarding on, sysctls applied.
  json node_addrs = ip_json(t.node(), {"addr", "show"});
  EXPECT_EQ(inet_addresses(find_link(node_addrs, "bl-node")),
            std::vector<std::string>{"198.51.100.1/24"});
  EXPECT_EQ(inet_addresses(find_link(node_addrs, "cbr0")),
            std::vector<std::string>{"203.0.113.1/24"});
  json node_links = ip_json(t.node(), {"link", "show"});
  for (size_t i = 0; i < 3; ++i) {
    json port = find_link(node_links, "bl-veth" + std::to_string(i));
    ASSERT_FALSE(port.is_null()) << node_links.dump();
    EXPECT_EQ(port.value("master", ""), "cbr0");
    EXPECT_EQ(port.at("operstate"), "UP");
  }
  EXPECT_EQ(testing::run_ok(t.node(), {"sysctl", "-n", "net.ipv4.ip_forward"}), "1\n");
  EXPECT_EQ(testing::run_ok(t.node(), {"sysctl", "-n", "net.core.somaxconn"}), "128\n");
  EXPECT_EQ(testing::run_ok(t.clients(), {"sysctl", "-n", "net.ipv4.ip_forward"}), "0\n");

  // Pods: own address, fixed MAC, default route via the bridge, pod sysctls.
  for (size_t i = 0; i < 3; ++i) {
    const netns& pod = t.pod(i);
    std::string link = "bl-pod" + std::to_string(i);
    json addrs = ip_json(pod, {"addr", "show"});
    EXPECT_EQ(inet_addresses(find_link(addrs, link)),
              std::vector<std::string>{"203.0.113." + std::to_string(10 + i) + "/24"});
    EXPECT_EQ(find_link(addrs, link).at("address"), topology::pod_mac(i));
    EXPECT_EQ(routes(pod)["default"], "203.0.113.1@" + link);
    EXPECT_TRUE(is_up(pod, link));
    EXPECT_EQ(read_sysctl(pod, "net.core.somaxconn"), "64");
    // Each pod sees only its own end.
    EXPECT_EQ(find_link(ip_json(pod, {"link", "show"}), "bl-pod" + std::to_string((i + 1) % 3)),
              nullptr);
  }
  for (const auto& name : testing::current_links())
    EXPECT_NE(name.rfind("bl-", 0), 0u) << name << " is in the host namespace";
}

TEST(topology, node_forwards_clients_to_pods_and_back) {
  BACKLOG_LAB_REQUIRE_LAB();
  topology t = topology::build_nodeport({2, 2, {}});
  unique_fd listener = testing::tcp_listen(t.pod(1), "0.0.0.0", 8080);
  unique_fd client =
      testing::tcp_connect_start(t.clients(), t.client_address(1), t.pod_address(1), 8080);
  ASSERT_EQ(testing::tcp_connect_finish(client, 5s), 0);
  unique_fd served = testing::tcp_accept(listener, 5s);
  ASSERT_GE(served.get(), 0);
  // No NAT on the way: the pod sees the client's own address.
  EXPECT_EQ(testing::peer_address(served), "198.51.100.11");
  ASSERT_EQ(::write(client.get(), "ping", 4), 4);
  EXPECT_EQ(testing::read_some(served, 5s), "ping");
  ASSERT_EQ(::write(served.get(), "pong", 4), 4);
  EXPECT_EQ(testing::read_some(client, 5s), "pong");
  // The node routed it: its forwarding counter moved.
  EXPECT_GT(counter(t.node(), "IpForwDatagrams"), 0);

  // A dual-stack [::] listener on the node, as kube-proxy holds NodePorts, takes IPv4 clients
  // although the lab's links carry no IPv6.
  int v6 = -1;
  {
    netns_scope in(t.node());
    v6 = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  unique_fd node_port(v6);
  int off = 0;
  ASSERT_EQ(::setsockopt(v6, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off), 0);
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_port = htons(30080);
  ASSERT_EQ(::bind(v6, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  ASSERT_EQ(::listen(v6, 16), 0);
  unique_fd to_node = testing::tcp_connect_start(t.clients(), "", t.node_address(), 30080);
  EXPECT_EQ(testing::tcp_connect_finish(to_node, 5s), 0);
}

TEST(topology, vanished_pod_leaves_syns_unanswered_and_comes_back) {
  BACKLOG_LAB_REQUIRE_LAB();
  // One SYN retransmission: an unanswered connect() ends with ETIMEDOUT after about 2 s.
  sysctl_map quick{{"net.ipv4.tcp_syn_retries", "1"}};
  topology t = topology::build_nodeport({1, 2, {{"node", quick}, {"clients", quick}}});
  // A node that gives up on ARP after 100 ms: were the pod merely unplugged, the node would
  // answer with ICMP host-unreachable well before the SYNs time out. (A new namespace has no
  // neigh.default keys: these are per link.)
  write_sysctl(t.node(), "net.ipv4.neigh.cbr0.mcast_solicit", "1");
  write_sysctl(t.node(), "net.ipv4.neigh.cbr0.retrans_time_ms", "100");
  unique_fd listener = testing::tcp_listen(t.pod(0), "0.0.0.0", 8080);
  auto connect_from = [&](const netns& ns) {
    return testing::tcp_connect_start(ns, "", t.pod_address(0), 8080);
  };
  {
    unique_fd c = connect_from(t.node());
    ASSERT_EQ(testing::tcp_connect_finish(c, 5s), 0);
    EXPECT_GE(testing::tcp_accept(listener, 5s).get(), 0); // keep the queue empty
    unique_fd refused = testing::tcp_connect_start(t.node(), "", t.pod_address(0), 8081);
    EXPECT_EQ(testing::tcp_connect_finish(refused, 5s), ECONNREFUSED);
  }
  t.set_pod_reachable(0, false);
  EXPECT_FALSE(t.pod_reachable(0));
  json neigh = ip_json(t.node(), {"neigh", "show", "dev", "cbr0"});
  ASSERT_EQ(neigh.size(), 1u) << neigh.dump();
  EXPECT_EQ(neigh[0].at("state"), json::array({"PERMANENT"}));
  // As if the node's cached entry had gone stale (it does within ~30 s): a flush spares only
  // permanent entries.
  testing::run_ok(t.node(), {"ip", "neigh", "flush", "dev", "cbr0"});
  {
    // From the node and, forwarded, from the clients: both time out, nothing answers.
    unique_fd from_node = connect_from(t.node());
    unique_fd from_clients = connect_from(t.clients());
    unique_fd to_closed_port = testing::tcp_connect_start(t.node(), "", t.pod_address(0), 8081);
    EXPECT_EQ(testing::tcp_connect_finish(from_node, 8s), ETIMEDOUT);
    EXPECT_EQ(testing::tcp_connect_finish(from_clients, 8s), ETIMEDOUT);
    EXPECT_EQ(testing::tcp_connect_finish(to_closed_port, 8s), ETIMEDOUT);
    EXPECT_EQ(testing::tcp_accept(listener, 0ms).get(), -1);
    // Not even an ICMP error came back to the clients.
    EXPECT_EQ(counter(t.clients(), "IcmpInDestUnreachs"), 0);
    EXPECT_EQ(counter(t.node(), "IcmpOutDestUnreachs"), 0);
  }
  // The other pod is unaffected.
  unique_fd other_listener = testing::tcp_listen(t.pod(1), "0.0.0.0", 8080);
  unique_fd other = testing::tcp_connect_start(t.clients(), "", t.pod_address(1), 8080);
  EXPECT_EQ(testing::tcp_connect_finish(other, 5s), 0);

  t.set_pod_reachable(0, true);
  EXPECT_TRUE(ip_json(t.node(), {"neigh", "show", "dev", "cbr0", "nud", "permanent"}).empty());
  EXPECT_EQ(routes(t.pod(0))["default"], "203.0.113.1@bl-pod0");
  unique_fd back = connect_from(t.clients());
  EXPECT_EQ(testing::tcp_connect_finish(back, 5s), 0);
  unique_fd served = testing::tcp_accept(listener, 5s);
  EXPECT_GE(served.get(), 0);
}

TEST(topology, second_pod_subnet_beyond_240_pods) {
  BACKLOG_LAB_REQUIRE_LAB();
  topology t = topology::build_nodeport({1, 242, {}});
  EXPECT_EQ(t.pod_address(239), "203.0.113.249");
  EXPECT_EQ(t.pod_address(240), "192.0.2.10");
  EXPECT_EQ(t.pod_address(241), "192.0.2.11");
  EXPECT_EQ(inet_addresses(find_link(ip_json(t.node(), {"addr", "show"}), "cbr0")),
            (std::vector<std::string>{"203.0.113.1/24", "192.0.2.1/24"}));
  EXPECT_EQ(routes(t.pod(241))["default"], "192.0.2.1@bl-pod241");
  for (size_t i : {size_t{0}, size_t{239}, size_t{241}}) {
    unique_fd listener = testing::tcp_listen(t.pod(i), "0.0.0.0", 8080);
    unique_fd c = testing::tcp_connect_start(t.clients(), "", t.pod_address(i), 8080);
    EXPECT_EQ(testing::tcp_connect_finish(c, 5s), 0) << "pod " << i;
  }
}

TEST(topology, third_pod_subnet_beyond_480_pods) {
  BACKLOG_LAB_REQUIRE_LAB();
  topology t = topology::build_nodeport({1, 482, {}});
  EXPECT_EQ(t.pod_address(479), "192.0.2.249");
  EXPECT_EQ(t.pod_address(480), "198.18.0.10");
  EXPECT_EQ(t.pod_address(481), "198.18.0.11");
  EXPECT_EQ(inet_addresses(find_link(ip_json(t.node(), {"addr", "show"}), "cbr0")),
            (std::vector<std::string>{"203.0.113.1/24", "192.0.2.1/24", "198.18.0.1/16"}));
  EXPECT_EQ(routes(t.pod(481))["default"], "198.18.0.1@bl-pod481");
  for (size_t i : {size_t{0}, size_t{479}, size_t{481}}) {
    unique_fd listener = testing::tcp_listen(t.pod(i), "0.0.0.0", 8080);
    unique_fd c = testing::tcp_connect_start(t.clients(), "", t.pod_address(i), 8080);
    EXPECT_EQ(testing::tcp_connect_finish(c, 5s), 0) << "pod " << i;
  }
}

TEST(topology, remote_ranges_are_routed_to_their_stand_ins_which_answer_for_every_address) {
  BACKLOG_LAB_REQUIRE_LAB();
  // Pod 1 stands in for 5 addresses (a /29, first as the larger block), pod 2 for 2 (a /31).
  topology t = topology::build_nodeport({1, 3, {}, {{1, 5}, {2, 2}}});
  EXPECT_EQ(t.remote_range(1), "198.19.0.0/29");
  EXPECT_EQ(t.remote_range(2), "198.19.0.8/31");
  EXPECT_EQ(t.remote_address(1, 4), "198.19.0.4");
  EXPECT_EQ(t.remote_address(2, 1), "198.19.0.9");
  EXPECT_THROW(t.remote_address(1, 5), input_error);
  EXPECT_THROW(t.remote_range(0), input_error);
  // What `ip route` shows: the node routes each block via its stand-in's pod address...
  auto node_routes = routes(t.node());
  EXPECT_EQ(node_routes["198.19.0.0/29"], t.pod_address(1) + "@cbr0");
  EXPECT_EQ(node_routes["198.19.0.8/31"], t.pod_address(2) + "@cbr0");
  // ...and the stand-in holds the block as local (AnyIP), `ip route show table local`.
  auto local = ip_json(t.pod(1), {"route", "show", "table", "local"});
  bool found = false;
  for (const auto& r : local)
    found = found || (r.value("type", "") == "local" && r.value("dst", "") == "198.19.0.0/29");
  EXPECT_TRUE(found) << local.dump();
  // A connection to any address of the block reaches the stand-in's listener, and the stand-in
  // sees the address the client dialled.
  unique_fd listener = testing::tcp_listen(t.pod(1), "0.0.0.0", 8080);
  for (const char* address : {"198.19.0.0", "198.19.0.4"}) {
    unique_fd c = testing::tcp_connect_start(t.clients(), "", address, 8080);
    ASSERT_EQ(testing::tcp_connect_finish(c, 5s), 0) << address;
    unique_fd served = testing::tcp_accept(listener, 5s);
    ASSERT_GE(served.get(), 0);
    sockaddr_in local_address{};
    socklen_t size = sizeof local_address;
    ASSERT_EQ(::getsockname(served.get(), reinterpret_cast<sockaddr*>(&local_address), &size), 0);
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &local_address.sin_addr, text, sizeof text);
    EXPECT_STREQ(text, address);
  }
  // An address of pod 2's block reaches pod 2, where nothing listens: refused, not pod 1's.
  unique_fd other = testing::tcp_connect_start(t.clients(), "", "198.19.0.9", 8080);
  EXPECT_EQ(testing::tcp_connect_finish(other, 5s), ECONNREFUSED);
}

TEST(topology, bad_plans_are_clear_errors_and_leave_nothing) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto our_namespaces = [] {
    // Namespaces this process refers to (fds and thread links), by inode.
    std::set<std::string> seen;
    for (int fd = 0; fd < 4096; ++fd) {
      char buf[64];
      ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf);
      if (n > 0 && std::string(buf, static_cast<size_t>(n)).rfind("net:", 0) == 0)
        seen.insert(std::string(buf, static_cast<size_t>(n)));
    }
    return seen;
  };
  auto before = our_namespaces();
  for (const char* role : {"clients", "node", "pods"}) {
    nodeport_plan plan{1, 2, {{role, {{"net.ipv4.tcp_no_such_key", "1"}}}}};
    try {
      topology::build_nodeport(plan);
      ADD_FAILURE() << "expected lab_error for role " << role;
    } catch (const lab_error& e) {
      EXPECT_NE(std::string(e.what()).find("net.ipv4.tcp_no_such_key"), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(our_namespaces(), before) << role;
  }
  EXPECT_THROW(topology::build_nodeport({1, 0, {{"proxy", {}}}}), input_error);
  EXPECT_THROW(topology::build_nodeport({0, 0, {}}), input_error);
  EXPECT_THROW(topology::build_nodeport({1, topology::max_pods + 1, {}}), input_error);
  EXPECT_THROW(topology::build_nodeport({1, 2, {}, {{2, 1}}}), input_error); // no pod 2
  EXPECT_THROW(topology::build_nodeport({1, 2, {}, {{0, 40'000}, {1, 1}}}), input_error);
  EXPECT_THROW(topology::build_nodeport({246, 0, {}}), input_error);
  EXPECT_EQ(our_namespaces(), before);
  for (const auto& name : testing::current_links())
    EXPECT_NE(name.rfind("bl-", 0), 0u) << name;
}

TEST(topology, destroyed_topology_leaves_nothing) {
  BACKLOG_LAB_REQUIRE_LAB();
  std::set<unsigned long> inodes;
  {
    topology t = topology::build_nodeport({2, 3, {}});
    inodes = inodes_of(t);
    ASSERT_EQ(inodes.size(), 5u);
    unique_fd listener = testing::tcp_listen(t.pod(0), "0.0.0.0", 8080);
    unique_fd c = testing::tcp_connect_start(t.clients(), "", t.pod_address(0), 8080);
    ASSERT_EQ(testing::tcp_connect_finish(c, 5s), 0);
    EXPECT_FALSE(testing::holders_of(inodes).empty()); // the check can see them while they live
  }
  std::vector<std::string> left;
  EXPECT_TRUE(eventually([&] { return (left = testing::holders_of(inodes)).empty(); }))
      << testing::lines(left);
  for (const auto& name : testing::current_links())
    EXPECT_NE(name.rfind("bl-", 0), 0u) << name;
}

} // namespace
} // namespace backlog_lab::lab
