#pragma once
// kube-proxy's userspace proxier (pkg/proxy/userspace, ~1.5-1.8), reduced to what matters for
// accept queues: per-Service listeners whose accept loop dials a backend synchronously. See
// docs/proxy-userspace.md for the model and where it departs from kube-proxy.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy_sim/proxier.hpp"

namespace backlog_lab::proxy_sim {

/// Userspace-mode counters beyond proxier_stats: why dials failed, what the loops are doing.
struct userspace_stats {
  uint64_t dial_refused = 0;        ///< tries refused at once (RST: nothing listening)
  uint64_t dial_timeouts = 0;       ///< tries cut off by their dial timeout (SYN unanswered)
  uint64_t dial_other_errors = 0;   ///< tries failing otherwise (unreachable, EMFILE, ...)
  uint64_t closed_no_endpoints = 0; ///< inbound connections closed at once: no endpoints
  uint64_t accept_errors = 0;       ///< accept() failures other than the listener closing
  uint64_t sessions_started = 0;    ///< copy sessions spawned after a successful dial
  uint64_t sessions_open = 0;       ///< copy sessions still running
  uint64_t internal_errors = 0;     ///< coroutines ended by an unexpected exception
};

class userspace_core;

/// The userspace proxier: one dual-stack listener `[::]:node_port` per Service in the node
/// namespace; accept one connection, dial an endpoint (250/500/1000/2000 ms tries, the next
/// endpoint each time), then copy bytes both ways in a session of its own.
class userspace_proxier final : public proxier {
public:
  /// Validates `spec` and `services` (input_error with the JSON path on bad values). Nothing is
  /// opened before start(). `seed` drives the endpoint shuffle.
  userspace_proxier(net::io_context& io, const lab::netns& node, const scenario::proxy_spec& spec,
                    std::vector<service_endpoints> services, uint64_t seed);
  ~userspace_proxier() override;
  userspace_proxier(const userspace_proxier&) = delete;
  userspace_proxier& operator=(const userspace_proxier&) = delete;

  /// Opens every NodePort listener (lab_error if one cannot be bound) and starts its accept loop.
  void start() override;
  /// Replaces a Service's endpoints (input_error for an unknown Service); dials in flight finish.
  void update_endpoints(const std::string& service, std::vector<tcp::endpoint> endpoints) override;
  /// Closes listeners (resetting their un-accepted children), dials in flight and all sessions.
  void stop() override;
  proxier_stats stats() const override;

  /// The counters only this mode has.
  userspace_stats detail() const;
  /// The port a Service listens on: its node_port, or the kernel's pick when that was 0.
  uint16_t node_port(const std::string& service) const;
  /// The backlog passed to listen(): spec.backlog, or somaxconn of the node namespace for -1.
  int listen_backlog() const;

private:
  std::shared_ptr<userspace_core> core_;
};

/// make_proxier's "userspace" branch.
std::unique_ptr<proxier> make_userspace_proxier(net::io_context& io, const lab::netns& node,
                                                const scenario::proxy_spec& spec,
                                                std::vector<service_endpoints> services,
                                                uint64_t seed);

} // namespace backlog_lab::proxy_sim
