#include "harness/lab/topology.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>

#include "harness/core/error.hpp"
#include "harness/lab/link.hpp"
#include "harness/scenario/model.hpp"

namespace backlog_lab::lab {
namespace {

constexpr size_t pods_per_subnet = 240; // .10 .. .249 of a /24
constexpr size_t small_subnet_pods = 2 * pods_per_subnet;
constexpr uint32_t large_subnet = 0xC6120000u; // 198.18.0.0/16, pods from 480 on
constexpr uint32_t remote_base = 0xC6130000u;  // 198.19.0.0/16, remote endpoints
static_assert(topology::max_pods == scenario::limits::max_backends &&
                  topology::max_client_addresses == scenario::limits::max_client_addresses &&
                  topology::max_remote_addresses == scenario::limits::max_remote_endpoints,
              "the scenario reader checks the lab's limits");
static_assert(small_subnet_pods + topology::max_pods + 10 < 65535, "pods fit in 198.18.0.0/16");

std::string dotted(uint32_t v) {
  return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) + "." +
         std::to_string((v >> 8) & 255) + "." + std::to_string(v & 255);
}

const sysctl_map& role_sysctls(const nodeport_plan& plan, const std::string& role) {
  static const sysctl_map none;
  auto it = plan.sysctls_by_role.find(role);
  return it == plan.sysctls_by_role.end() ? none : it->second;
}

void check_plan(const nodeport_plan& plan) {
  for (const auto& [role, values] : plan.sysctls_by_role)
    if (role != "clients" && role != "node" && role != "pods")
      throw input_error("sysctls role '" + role + "'", "one of \"clients\", \"node\", \"pods\"");
  if (plan.client_addresses < 1 || plan.client_addresses > topology::max_client_addresses)
    throw input_error("nodeport topology: client addresses " +
                          std::to_string(plan.client_addresses),
                      "1 to " + std::to_string(topology::max_client_addresses));
  if (plan.pods > topology::max_pods)
    throw input_error(
        "nodeport topology: pods " + std::to_string(plan.pods),
        "at most " + std::to_string(topology::max_pods) +
            " (one bridge port each, and a bridge has 1,024; see harness/lab/topology.hpp)");
  size_t blocks = 0;
  for (const auto& [pod, count] : plan.remote_addresses) {
    if (pod >= plan.pods || count == 0)
      throw input_error("nodeport topology: remote addresses for pod " + std::to_string(pod),
                        "a stand-in among the pods, answering for at least one address");
    blocks += std::bit_ceil(count);
  }
  if (blocks > topology::max_remote_addresses)
    throw input_error("nodeport topology: remote addresses (" + std::to_string(blocks) +
                          " once each stand-in's share is rounded up to a power of two)",
                      "at most " + std::to_string(topology::max_remote_addresses) +
                          " (198.19.0.0/16)");
}

// Lab defaults first, then the role's sysctls (which may override them), before any link exists.
void prepare(const netns& ns, const sysctl_map& role) {
  // The lab speaks IPv4 only: links without IPv6 send no DAD, router solicitations or MLD
  // reports (noise for observers), and spare the kernel that work on every link.
  write_sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1");
  apply_sysctls(ns, role);
}

} // namespace

topology topology::build_nodeport(const nodeport_plan& plan) {
  check_plan(plan);
  // Every namespace lives in `t` from the moment it exists, so a throw anywhere releases all.
  topology t;
  t.client_addresses_ = plan.client_addresses;
  t.clients_ = netns::create("clients");
  t.node_ = netns::create("node");
  prepare(t.clients_, role_sysctls(plan, "clients"));
  write_sysctl(t.node_, "net.ipv4.ip_forward", "1");
  prepare(t.node_, role_sysctls(plan, "node"));

  rtnl_socket node(t.node_);
  node.create_bridge(bridge());
  node.add_address(bridge(), "203.0.113.1/24");
  if (plan.pods > pods_per_subnet) node.add_address(bridge(), "192.0.2.1/24");
  if (plan.pods > small_subnet_pods)
    node.add_address(bridge(), pod_gateway(small_subnet_pods) + "/16");
  node.set_link_up(bridge());

  node.create_veth(node_link(), t.clients_, clients_link());
  node.add_address(node_link(), t.node_address() + "/24");
  node.set_link_up(node_link());
  {
    rtnl_socket clients(t.clients_);
    for (size_t k = 0; k < plan.client_addresses; ++k)
      clients.add_address(clients_link(), t.client_address(k) + "/24");
    clients.set_link_up(clients_link());
    clients.add_route("default", t.node_address());
  }

  const sysctl_map& pod_sysctls = role_sysctls(plan, "pods");
  t.pods_.reserve(plan.pods);
  for (size_t i = 0; i < plan.pods; ++i) {
    t.pods_.push_back(netns::create("pod" + std::to_string(i)));
    t.reachable_.push_back(true);
    const netns& pod_ns = t.pods_.back();
    prepare(pod_ns, pod_sysctls);
    node.create_veth(node_pod_link(i), pod_ns, pod_link(i), {}, pod_mac(i));
    node.set_master(node_pod_link(i), bridge());
    node.set_link_up(node_pod_link(i));
    rtnl_socket pod(pod_ns);
    pod.add_address(pod_link(i), t.pod_address(i) + (i < small_subnet_pods ? "/24" : "/16"));
    pod.set_link_up(pod_link(i));
    pod.add_route("default", pod_gateway(i));
    pod.wait_operational(pod_link(i));
  }
  // Ready means ready: every link has carrier and the kernel has applied it (see
  // rtnl_socket::wait_operational), so the first SYN of a run is not lost.
  rtnl_socket(t.clients_).wait_operational(clients_link());
  node.wait_operational(node_link());
  for (size_t i = 0; i < plan.pods; ++i)
    node.wait_operational(node_pod_link(i));
  if (plan.pods > 0) node.wait_operational(bridge());

  // Remote endpoints: largest blocks first, so every block lands aligned with no gaps.
  std::vector<std::pair<size_t, size_t>> stand_ins(plan.remote_addresses.begin(),
                                                   plan.remote_addresses.end());
  std::stable_sort(stand_ins.begin(), stand_ins.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  uint32_t next = remote_base;
  for (const auto& [pod, count] : stand_ins) {
    size_t size = std::bit_ceil(count);
    remote_block block{next, 32u - static_cast<unsigned>(std::countr_zero(size)), count};
    next += static_cast<uint32_t>(size);
    t.remote_.emplace(pod, block);
    std::string range = t.remote_range(pod);
    node.add_route(range, t.pod_address(pod));
    rtnl_socket(t.pods_[pod]).add_local_route(range, pod_link(pod));
  }
  return t;
}

const netns& topology::pod(size_t i) const {
  if (i >= pods_.size())
    throw input_error("pod " + std::to_string(i),
                      "a pod index below " + std::to_string(pods_.size()));
  return pods_[i];
}

std::string topology::client_address(size_t k) const {
  if (k >= client_addresses_)
    throw input_error("client address " + std::to_string(k),
                      "an index below " + std::to_string(client_addresses_));
  return "198.51.100." + std::to_string(10 + k);
}

std::string topology::pod_address(size_t i) const {
  pod(i); // range check
  if (i < pods_per_subnet) return "203.0.113." + std::to_string(10 + i);
  if (i < small_subnet_pods) return "192.0.2." + std::to_string(10 + i - pods_per_subnet);
  return dotted(large_subnet + 10 + static_cast<uint32_t>(i - small_subnet_pods));
}

std::string topology::pod_gateway(size_t i) {
  if (i < pods_per_subnet) return "203.0.113.1";
  if (i < small_subnet_pods) return "192.0.2.1";
  return dotted(large_subnet + 1);
}

std::string topology::remote_range(size_t i) const {
  auto it = remote_.find(i);
  if (it == remote_.end())
    throw input_error("remote range of pod " + std::to_string(i), "a stand-in pod");
  return dotted(it->second.base) + "/" + std::to_string(it->second.prefix);
}

std::string topology::remote_address(size_t i, size_t k) const {
  auto it = remote_.find(i);
  if (it == remote_.end() || k >= it->second.count)
    throw input_error("remote address " + std::to_string(k) + " of pod " + std::to_string(i),
                      "a stand-in pod and an index below its count");
  return dotted(it->second.base + static_cast<uint32_t>(k));
}

std::string topology::pod_mac(size_t i) {
  char text[32];
  std::snprintf(text, sizeof text, "02:62:6c:00:%02x:%02x", static_cast<unsigned>((i >> 8) & 0xff),
                static_cast<unsigned>(i & 0xff));
  return text;
}

void topology::set_pod_reachable(size_t i, bool reachable) {
  const netns& pod_ns = pod(i);
  if (reachable_[i] == reachable) return;
  rtnl_socket node(node_);
  rtnl_socket pod(pod_ns);
  if (!reachable) {
    // Pin first: from then on the node never asks ARP, so it never learns the pod is gone.
    node.pin_neighbour(bridge(), pod_address(i), pod_mac(i));
    pod.set_link_up(pod_link(i), false);
  } else {
    pod.set_link_up(pod_link(i), true);
    pod.add_route("default", pod_gateway(i), true);
    pod.wait_operational(pod_link(i));
    node.wait_operational(node_pod_link(i));
    node.delete_neighbour(bridge(), pod_address(i));
  }
  reachable_[i] = reachable;
}

bool topology::pod_reachable(size_t i) const {
  pod(i);
  return reachable_[i];
}

std::vector<const netns*> topology::namespaces() const {
  std::vector<const netns*> all;
  if (clients_.valid()) all.push_back(&clients_);
  if (node_.valid()) all.push_back(&node_);
  for (const auto& p : pods_)
    all.push_back(&p);
  return all;
}

std::vector<std::string> topology::veth_names() const {
  std::vector<std::string> names{clients_link(), node_link()};
  for (size_t i = 0; i < pods_.size(); ++i) {
    names.push_back(node_pod_link(i));
    names.push_back(pod_link(i));
  }
  return names;
}

} // namespace backlog_lab::lab
