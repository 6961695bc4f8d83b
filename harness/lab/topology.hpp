#pragma once
// The lab's wired namespaces: what the runner builds before it starts any actor.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "harness/lab/netns.hpp"
#include "harness/lab/sysctl.hpp"

namespace backlog_lab::lab {

/// What to build for the `nodeport` topology.
struct nodeport_plan {
  size_t client_addresses = 1; ///< addresses on the clients' link, 1..245
  size_t pods = 0;             ///< pod namespaces, 0..max_pods
  /// Sysctls per role: "clients", "node", "pods" (every pod namespace); other roles are errors.
  std::map<std::string, sysctl_map> sysctls_by_role;
  /// Stand-ins for endpoints on other nodes: pod index -> how many remote addresses it answers
  /// for. Each gets an aligned block of 198.19.0.0/16 (its count rounded up to a power of two).
  std::map<size_t, size_t> remote_addresses = {};
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
/// a second subnet on the same bridge, 192.0.2.(10+i-240)/24 (gateway 192.0.2.1); pods from 480 on
/// in a third, 198.18.0.0/16 (RFC 2544's benchmarking range), at 198.18.0.0 + 10 + (i-480)
/// (gateway 198.18.0.1). Each gateway is added to cbr0 only when needed. Pod i's link has the
/// fixed MAC 02:62:6c:00:HI:LO (i in two bytes).
///
/// Remote endpoints (endpoints on other nodes): each stand-in pod answers for an aligned block of
/// 198.19.0.0/16, blocks handed out largest first. The node routes the block via the pod's
/// address; the pod holds a `local` route for it on its link (AnyIP), so its listener on 0.0.0.0
/// accepts connections to every address of the block, and replies leave from that address.
/// Link names start with "bl-" so that a host-namespace check for leftovers is meaningful.
///
/// Sysctls: every namespace first gets net.ipv6.conf.default.disable_ipv6=1 (the lab is IPv4
/// only; links then send no DAD/RS/MLD noise and cost the kernel less), the node also
/// net.ipv4.ip_forward=1, then the role's map, which may override both. All before any link
/// exists, so net.ipv4.conf.default.* reaches every link. A new namespace has no
/// net.ipv4.neigh.default.* keys: ARP settings are per link (net.ipv4.neigh.cbr0.*), to be
/// written after build_nodeport. A dual-stack [::] listener still takes IPv4 clients.
///
/// What bounds a lab is the bridge, not addresses: a Linux bridge takes at most 1,024 ports
/// (BR_MAX_PORTS in net/bridge/br_private.h; enslaving the 1,024th pod fails with EXFULL on 6.18),
/// so 1,023 pods. File descriptors come next: this process holds 1 per namespace, the runner 2
/// more per pod (its counter files) and 1 per listener, of a limit of 20,000 here (`ulimit -n`);
/// see limits in harness/scenario/model.hpp and docs/scenario-format.md.
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
  /// The block of remote addresses stand-in pod `i` answers for, "198.19.X.Y/P"; throws
  /// input_error if pod `i` is no stand-in.
  std::string remote_range(size_t i) const;
  /// Address `k` of stand-in pod `i`'s block; throws input_error beyond what it was built for.
  std::string remote_address(size_t i, size_t k) const;

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

  /// Largest number of pods build_nodeport accepts (the bridge's ports, see above).
  static constexpr size_t max_pods = 1023;
  /// Addresses of the remote range (198.19.0.0/16).
  static constexpr size_t max_remote_addresses = 65536;
  /// Largest number of client addresses build_nodeport accepts.
  static constexpr size_t max_client_addresses = 245;

private:
  netns clients_;
  netns node_;
  std::vector<netns> pods_;
  std::vector<bool> reachable_;
  struct remote_block {
    uint32_t base = 0; ///< host order
    unsigned prefix = 32;
    size_t count = 0; ///< addresses asked for
  };
  std::map<size_t, remote_block> remote_; ///< by stand-in pod
  size_t client_addresses_ = 0;
};

} // namespace backlog_lab::lab
