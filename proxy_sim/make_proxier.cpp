#include "harness/core/error.hpp"
#include "proxy_sim/iptables/iptables_proxier.hpp"
#include "proxy_sim/proxier.hpp"
#include "proxy_sim/userspace/userspace_proxier.hpp"

namespace backlog_lab::proxy_sim {

std::unique_ptr<proxier> make_proxier(net::io_context& io, const lab::netns& node,
                                      const scenario::proxy_spec& spec,
                                      std::vector<service_endpoints> services, const std::string&,
                                      uint64_t seed) {
  if (spec.mode == "userspace")
    return make_userspace_proxier(io, node, spec, std::move(services), seed);
  if (spec.mode == "iptables") return make_iptables_proxier(io, node, spec, std::move(services));
  // Replaced when the modes land (proxy_sim/userspace, proxy_sim/iptables).
  throw input_error("/proxy/mode", "a supported proxy mode; '" + spec.mode + "' is not built yet");
}

} // namespace backlog_lab::proxy_sim
