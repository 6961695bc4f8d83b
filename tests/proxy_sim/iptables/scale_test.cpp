// 10,000 Services with endpoints on other nodes, in a real node namespace: the rules as
// `iptables-save` counts them, the routed ranges as `ip route` shows them, and connections
// through the DNAT rules reaching the stand-in that answers for every remote endpoint.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <gtest/gtest.h>

#include "harness/lab/topology.hpp"
#include "proxy_sim/iptables/iptables_proxier.hpp"
#include "tests/harness/lab/tcp_util.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::proxy_sim {
namespace {

using namespace std::chrono_literals;
using testing::run_ok;
using testing::unique_fd;

constexpr std::size_t services_count = 10'000;
constexpr std::size_t stand_in = 1; // pod 0 is a local pod, pod 1 answers for the others

std::string cluster_ip(std::size_t i) {
  return "10.96." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
}

std::string local_address_of(const unique_fd& fd) {
  sockaddr_in a{};
  socklen_t size = sizeof a;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &size) != 0) return {};
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
  return text;
}

TEST(iptables_scale, ten_thousand_services_reach_their_stand_in_through_the_dnat_rules) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto t = lab::topology::build_nodeport({1, 2, {}, {{stand_in, services_count}}});
  std::vector<service_endpoints> services;
  for (std::size_t i = 0; i < services_count; ++i) {
    service_endpoints s;
    s.service = "scale/svc-" + std::to_string(i) + ":http";
    s.node_port = static_cast<uint16_t>(20'000 + i);
    s.cluster_ip = cluster_ip(i);
    s.endpoints.emplace_back(net::ip::make_address_v4(t.remote_address(stand_in, i)), 8080);
    services.push_back(std::move(s));
  }
  net::io_context io{1};
  scenario::proxy_spec spec;
  spec.mode = scenario::proxy_mode::iptables;
  spec.preset = scenario::proxy_preset::v1_24; // no 10,000 held sockets
  auto proxier = make_iptables_proxier(io, t.node(), spec, services);
  proxier->start();
  ASSERT_EQ(proxier->stats().rule_syncs, 1u);

  // iptables-save | wc -l: per Service 2 NodePort rules, 1 ClusterIP rule, 1 KUBE-SVC rule,
  // 2 KUBE-SEP rules and 2 chain lines.
  auto saved = run_ok(t.node(), {"iptables-save"});
  auto lines = static_cast<std::size_t>(std::count(saved.begin(), saved.end(), '\n'));
  EXPECT_GE(lines, 8 * services_count);
  EXPECT_LT(lines, 8 * services_count + 100);
  // ip route: the whole block (10,000 rounded up to 16,384 = a /18) via the stand-in.
  auto routes = run_ok(t.node(), {"ip", "route", "show", "198.19.0.0/18"});
  EXPECT_NE(routes.find("198.19.0.0/18 via " + t.pod_address(stand_in)), std::string::npos)
      << routes;

  unique_fd listener = testing::tcp_listen(t.pod(stand_in), "0.0.0.0", 8080);
  for (std::size_t i : {std::size_t{0}, std::size_t{4'999}, std::size_t{9'999}}) {
    SCOPED_TRACE("service " + std::to_string(i));
    struct way {
      std::string address;
      uint16_t port;
    };
    for (const way& w : {way{t.node_address(), services[i].node_port}, way{cluster_ip(i), 80}}) {
      unique_fd c = testing::tcp_connect_start(t.clients(), "", w.address, w.port);
      ASSERT_EQ(testing::tcp_connect_finish(c, 10s), 0) << w.address << ":" << w.port;
      unique_fd served = testing::tcp_accept(listener, 10s);
      ASSERT_GE(served.get(), 0);
      // DNAT chose this Service's remote endpoint, which the stand-in answered for.
      EXPECT_EQ(local_address_of(served), t.remote_address(stand_in, i));
    }
  }
  proxier->stop();
  auto after = run_ok(t.node(), {"iptables-save", "-t", "nat"});
  EXPECT_EQ(after.find("KUBE-"), std::string::npos) << "rules left after stop()";
}

} // namespace
} // namespace backlog_lab::proxy_sim
