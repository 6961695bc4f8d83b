#pragma once
// kube-proxy 1.37's localhost NodePort proxy (pkg/proxy/localnodeportproxy, behind the alpha
// gate KubeProxyNFTablesLocalhostNodePorts): nftables has no route_localnet, so node-local
// programs reach a NodePort on 127.0.0.1 through a userspace listener per Service that has
// endpoints. Unlike the iptables mode's held port it accepts at once (docs/proxy-nftables.md).
#include <cstdint>
#include <memory>
#include <vector>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/scenario/model.hpp"
#include "proxy_sim/proxier.hpp"

namespace backlog_lab::proxy_sim::nftables {

class localhost_proxy_core;

/// The listeners on 127.0.0.1:NodePort of the node namespace, as LocalNodePortProxy keeps them:
/// an accept loop that never waits, one dial per connection to a random endpoint (5 s, no
/// retry), bytes copied both ways with half-closes, ClientIP affinity pinning one endpoint.
class localhost_node_ports {
public:
  /// Listeners open in `node` with Go's backlog (its somaxconn); `spec` gives the affinity and
  /// its timeout, `seed` the endpoint picks. Nothing is opened before sync().
  localhost_node_ports(net::io_context& io, const lab::netns& node,
                       const scenario::proxy_spec& spec, uint64_t seed);
  ~localhost_node_ports();
  localhost_node_ports(const localhost_node_ports&) = delete;
  localhost_node_ports& operator=(const localhost_node_ports&) = delete;

  /// SyncNodePorts: a listener for each Service with endpoints (this node's only under
  /// externalTrafficPolicy Local), new endpoints for those already open, and the listeners of
  /// Services without endpoints closed with their connections. A port that cannot be had is
  /// counted and skipped, as kube-proxy logs it and goes on.
  void sync(const std::vector<service_endpoints>& services);
  /// Shutdown: every listener, dial and connection closed.
  void shutdown();
  /// Adds what it did (accepted, dials, bytes, listen failures, errors it logged) to `stats`.
  void add_stats(proxier_stats& stats) const;

private:
  std::shared_ptr<localhost_proxy_core> core_;
};

} // namespace backlog_lab::proxy_sim::nftables
