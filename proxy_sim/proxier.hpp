#pragma once
// The kube-proxy simulator's common face: what the runner drives, whatever the mode.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/scenario/model.hpp"
#include "proxy_sim/stats.hpp"

namespace backlog_lab::proxy_sim {

/// A Service as the proxier sees it: its ports and the addresses of its ready endpoints.
struct service_endpoints {
  std::string service;                  ///< "namespace/name:port"
  uint16_t node_port = 0;               ///< NodePort on the node
  uint16_t port = 80;                   ///< ClusterIP port
  std::string cluster_ip;               ///< may be empty (no ClusterIP rules then)
  std::vector<tcp::endpoint> endpoints; ///< pod IP:port on this node, in scenario order
  /// externalTrafficPolicy Local: NodePort traffic goes to this node's endpoints only.
  bool external_policy_local = false;
  /// Ready endpoints on other nodes: in the Service's rules, never local.
  std::vector<tcp::endpoint> other_node_endpoints;
};

/// A running kube-proxy simulator in the node's namespace.
class proxier {
public:
  virtual ~proxier() = default;
  /// Holds/opens the NodePorts and installs rules for the initial endpoints.
  virtual void start() = 0;
  /// A Service's ready endpoints changed (scale, rollout, a pod killed); applied as kube-proxy
  /// would (iptables: after the sync delay).
  virtual void update_endpoints(const std::string& service,
                                std::vector<tcp::endpoint> endpoints) = 0;
  /// Closes everything it opened and removes its rules.
  virtual void stop() = 0;
  virtual proxier_stats stats() const = 0;
  /// The installed NAT rules as `iptables -t nat -S` lists them (empty for userspace).
  virtual std::string rules_listing() const { return {}; }
  /// A rule sync's tool (iptables-restore, nft) is running now, on its own thread. The runner
  /// lets it end before the final census, as it did when the sync held up the whole run.
  virtual bool sync_running() const { return false; }
};

/// Builds the proxier for `spec.mode` ("userspace", "iptables" or "nftables") in namespace `node`.
/// `seed` drives random choices (the userspace proxier's endpoint order).
std::unique_ptr<proxier> make_proxier(net::io_context& io, const lab::netns& node,
                                      const scenario::proxy_spec& spec,
                                      std::vector<service_endpoints> services, uint64_t seed);

} // namespace backlog_lab::proxy_sim
