#pragma once
// The lab's wired namespaces: what the runner builds before it starts any actor.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "harness/lab/netns.hpp"
#include "harness/lab/sysctl.hpp"

namespace backlog_lab::lab {

/// What to build for the `nodeport` topology.
struct nodeport_plan {
  size_t client_addresses = 1; ///< addresses on the clients' link, 1..245
  size_t pods = 0;             ///< pod namespaces, 0..480
  /// Sysctls per role: "clients", "node", "pods" (every pod namespace); other roles are errors.
  std::map<std::string, sysctl_map> sysctls_by_role;
};

/// A built set of namespaces, held by this object only (anonymous netns fds): destroying it, or
/// the process dying, releases everything, links included.
///
/// `nodeport` layout (documentation ranges only):
///
///     clients ns              node ns                                   pod i ns
///     bl-clients  <--veth-->  bl-node 198.51.100.1/24
///     198.51.100.(10+k)/24    cbr0 (bridge) 203.0.113.1/24 [192.0.2.1/24]
///     default via .1            bl-veth<i> (port of cbr0)  <--veth-->   bl-pod<i>
///                             ip_forward=1                              address below,
///                                                                       default via cbr0
///
/// Client address k = 198.51.100.(10+k), all on bl-clients, so each client group can bind its own
/// source address. Pod i < 240 is 203.0.113.(10+i)/24 (gateway 203.0.113.1); pods 240..479 are in
/// a second subnet on the same bridge, 192.0.2.(10+i-240)/24 (gateway 192.0.2.1, added to cbr0
/// only when needed). Pod i's link has the fixed MAC 02:62:6c:00:HI:LO (i in two bytes).
/// Link names start with "bl-" so that a host-namespace check for leftovers is meaningful.
///
/// Sysctls: every namespace first gets net.ipv6.conf.default.disable_ipv6=1 (the lab is IPv4
/// only; links then send no DAD/RS/MLD noise and cost the kernel less), the node also
/// net.ipv4.ip_forward=1, then the role's map, which may override both. All before any link
/// exists, so net.ipv4.conf.default.* reaches every link. A new namespace has no
/// net.ipv4.neigh.default.* keys: ARP settings are per link (net.ipv4.neigh.cbr0.*), to be
/// written after build_nodeport. A dual-stack [::] listener still takes IPv4 clients.
///
/// build_nodeport returns once every link is operational (see rtnl_socket::wait_operational).
/// Measured on 6.18, 2 cores: ~3 ms for 1 pod, ~30 ms for 20, ~150 ms for 120, ~0.8 s for 480;
/// destruction only closes fds (< 1 ms), the kernel frees the namespaces in the background
/// (~0.1 s for 120 pods).
class topology {
public:
  /// Builds the `nodeport` topology. On any failure throws (lab_error, or input_error for a bad
  /// plan) and leaves nothing behind.
  static topology build_nodeport(const nodeport_plan& plan);

  topology() = default;
  topology(topology&&) noexcept = default;
  topology& operator=(topology&&) noexcept = default;

  /// The clients' namespace.
  const netns& clients() const noexcept { return clients_; }
  /// The node's namespace (bridge, forwarding, the NodePort listeners of the proxy).
  const netns& node() const noexcept { return node_; }
  /// Pod `i`'s namespace; throws input_error if there is no such pod.
  const netns& pod(size_t i) const;
  /// Number of pod namespaces.
  size_t pod_count() const noexcept { return pods_.size(); }

  /// The node's address on the clients' network, "198.51.100.1".
  std::string node_address() const { return "198.51.100.1"; }
  /// Client address `k`, "198.51.100.(10+k)".
  std::string client_address(size_t k) const;
  /// Pod `i`'s address (see the layout above).
  std::string pod_address(size_t i) const;

  /// Makes pod `i` leave the network ("vanish": SYNs to it go unanswered, no RST, no ICMP) or
  /// come back. Mechanism, measured on 6.18: the node's neighbour entry for the pod is pinned
  /// (NUD_PERMANENT) to the pod's MAC and the pod's link is set down; packets to the pod then
  /// leave the bridge into a port without carrier and are dropped silently. Link down alone is
  /// not enough: once ARP fails the node answers with ICMP host-unreachable, which ends a
  /// connect() with EHOSTUNREACH after ~3 s instead of a timeout. Coming back: link up, the
  /// default route (which link down removed) re-added, the pinned entry deleted.
  void set_pod_reachable(size_t i, bool reachable);
  /// Whether pod `i` is currently reachable.
  bool pod_reachable(size_t i) const;

  /// Every namespace of the topology (clients, node, pods in order), for cleanup checks and
  /// observers.
  std::vector<const netns*> namespaces() const;
  /// The names of every veth end the topology created (in whichever namespace).
  std::vector<std::string> veth_names() const;

  /// The clients' link ("bl-clients").
  static std::string clients_link() { return "bl-clients"; }
  /// The node's link towards the clients ("bl-node").
  static std::string node_link() { return "bl-node"; }
  /// The node's bridge ("cbr0", as on the incident's node).
  static std::string bridge() { return "cbr0"; }
  /// The node's end of pod `i`'s veth ("bl-veth<i>").
  static std::string node_pod_link(size_t i) { return "bl-veth" + std::to_string(i); }
  /// Pod `i`'s own end ("bl-pod<i>").
  static std::string pod_link(size_t i) { return "bl-pod" + std::to_string(i); }
  /// Pod `i`'s MAC address.
  static std::string pod_mac(size_t i);
  /// Pod `i`'s gateway (the bridge address of its subnet).
  static std::string pod_gateway(size_t i);

  /// Largest number of pods build_nodeport accepts.
  static constexpr size_t max_pods = 480;
  /// Largest number of client addresses build_nodeport accepts.
  static constexpr size_t max_client_addresses = 245;

private:
  netns clients_;
  netns node_;
  std::vector<netns> pods_;
  std::vector<bool> reachable_;
  size_t client_addresses_ = 0;
};

} // namespace backlog_lab::lab
