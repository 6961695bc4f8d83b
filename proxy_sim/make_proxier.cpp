#include "harness/core/error.hpp"
#include "proxy_sim/iptables/iptables_proxier.hpp"
#include "proxy_sim/nftables/nftables_proxier.hpp"
#include "proxy_sim/proxier.hpp"
#include "proxy_sim/userspace/userspace_proxier.hpp"

namespace backlog_lab::proxy_sim {

std::unique_ptr<proxier> make_proxier(net::io_context& io, const lab::netns& node,
                                      const scenario::proxy_spec& spec,
                                      std::vector<service_endpoints> services, uint64_t seed) {
  switch (spec.mode) {
  case scenario::proxy_mode::userspace:
    return make_userspace_proxier(io, node, spec, std::move(services), seed);
  case scenario::proxy_mode::iptables:
    return make_iptables_proxier(io, node, spec, std::move(services));
  case scenario::proxy_mode::nftables:
    return make_nftables_proxier(io, node, spec, std::move(services), seed);
  case scenario::proxy_mode::exec:
    break;
  }
  // exec runs the user's proxy (harness/runner/exec_actor.cpp), never through here: a
  // programming error, reported rather than crashed on.
  throw input_error("/proxy/mode",
                    "\"userspace\", \"iptables\" or \"nftables\" for proxy_sim, got \"exec\"");
}

} // namespace backlog_lab::proxy_sim
