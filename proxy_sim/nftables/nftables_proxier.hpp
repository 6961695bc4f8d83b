#pragma once
// kube-proxy's nftables mode in the node's namespace: table `ip kube-proxy` replaced by one
// `nft -f` transaction per sync; no NodePort is held (1.37 may add accepting listeners on
// 127.0.0.1, proxy_sim/nftables/localhost_node_ports.hpp).
#include <memory>
#include <vector>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/scenario/model.hpp"
#include "proxy_sim/proxier.hpp"

namespace backlog_lab::proxy_sim {

/// Builds the nftables-mode proxier for `services` in namespace `node` (kept open by a
/// duplicate handle). Checks `spec` and the services now; throws input_error naming the field.
/// Nothing is installed before start(). `io` must outlive the proxier (its sync timer). With
/// spec.localhost_node_ports, each sync also keeps 1.37's localhost NodePort proxy (`seed`
/// drives its endpoint picks).
std::unique_ptr<proxier> make_nftables_proxier(net::io_context& io, const lab::netns& node,
                                               const scenario::proxy_spec& spec,
                                               std::vector<service_endpoints> services,
                                               uint64_t seed);

} // namespace backlog_lab::proxy_sim
