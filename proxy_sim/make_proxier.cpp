#include "harness/core/error.hpp"
#include "proxy_sim/proxier.hpp"

namespace backlog_lab::proxy_sim {

std::unique_ptr<proxier> make_proxier(net::io_context&, const lab::netns&,
                                      const scenario::proxy_spec& spec,
                                      std::vector<service_endpoints>, const std::string&,
                                      uint64_t) {
  // Replaced when the modes land (proxy_sim/userspace, proxy_sim/iptables).
  throw input_error("/proxy/mode", "a supported proxy mode; '" + spec.mode + "' is not built yet");
}

} // namespace backlog_lab::proxy_sim
