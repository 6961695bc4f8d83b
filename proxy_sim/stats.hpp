#pragma once
// A proxier's own counters, apart from the proxier, so that results (run_result, the reports)
// name them without the simulator's header.
#include <cstdint>
#include <string>
#include <vector>

namespace backlog_lab::proxy_sim {

/// Counters a proxier keeps about its own work (the kernel's view comes from the observer).
struct proxier_stats {
  // "userspace": the userspace mode, or nftables 1.37's localhost NodePort proxy.
  uint64_t accepted = 0;        ///< userspace: connections accepted from NodePorts
  uint64_t dial_attempts = 0;   ///< userspace: backend connect() attempts
  uint64_t dial_failures = 0;   ///< userspace: attempts that failed or timed out
  uint64_t dial_gave_up = 0;    ///< userspace: inbound connections closed after all tries failed
  uint64_t listen_failures = 0; ///< localhost proxy: NodePorts it could not listen on
  uint64_t bytes_to_backend = 0;
  uint64_t bytes_to_client = 0;
  uint64_t rule_syncs = 0;              ///< iptables: times the rules were rewritten
  uint64_t rule_sync_failures = 0;      ///< iptables: syncs whose restore failed (the run went on)
  std::vector<std::string> sync_errors; ///< iptables: the first few failures' messages
  /// iptables: the wall time of each sync's iptables-restore in ms, the first one the install.
  std::vector<double> rule_sync_ms;
};

} // namespace backlog_lab::proxy_sim
