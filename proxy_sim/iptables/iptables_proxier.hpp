#pragma once
// kube-proxy's iptables mode in the node's namespace: NAT rules applied with iptables-restore,
// and (before 1.24) every NodePort held by a listening socket that is never accepted.
#include <memory>
#include <vector>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/scenario/model.hpp"
#include "proxy_sim/proxier.hpp"

namespace backlog_lab::proxy_sim {

/// Builds the iptables-mode proxier for `services` in namespace `node` (kept open by a
/// duplicate handle). Checks `spec` (preset, affinity) and the services now; throws
/// input_error naming the field. Nothing is opened or installed before start(). `io` must
/// outlive the proxier (its sync timer and held sockets belong to it).
std::unique_ptr<proxier> make_iptables_proxier(net::io_context& io, const lab::netns& node,
                                               const scenario::proxy_spec& spec,
                                               std::vector<service_endpoints> services);

} // namespace backlog_lab::proxy_sim
