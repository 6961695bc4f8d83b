#pragma once
// Everything a scenario run produced: the kernel's view (census, counters, timeline), the actors'
// own counters, the metrics derived from them and the verdict on every expectation.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backends/stats.hpp"
#include "harness/clients/results.hpp"
#include "harness/expect/expect.hpp"
#include "harness/observer/census.hpp"
#include "harness/observer/counters.hpp"
#include "harness/scenario/model.hpp"
#include "proxy_sim/stats.hpp"

namespace backlog_lab::runner {

/// A timeline event as it was carried out.
struct event_record {
  double at_ms = 0; ///< when it ran, from the start of the run
  std::string action;
  std::string target;
  std::string note; ///< what it did, e.g. the endpoints that were set
};

/// One sample of one listener's accept queue.
struct queue_sample {
  double at_ms = 0;
  std::uint32_t accept_queue = 0;
};

/// One timeline sample of a namespace's counters (those the report charts).
struct counter_sample {
  double at_ms = 0;
  std::map<std::string, std::int64_t> values;
};

/// A listener followed through the run by the sampler.
struct listener_track {
  std::string role; ///< "node" or a backend name
  std::uint16_t port = 0;
  std::uint32_t backlog = 0;
  std::uint32_t peak = 0; ///< largest accept_queue seen
  double full_ms = 0;     ///< time spent full (accept_queue > backlog)
  std::optional<double> first_full_ms;
  std::vector<std::pair<double, double>> full_intervals; ///< [from, to) in ms from the start
  std::vector<queue_sample> samples;                     ///< only when the queue changed
  /// Its sk_drops ("drops": since it was opened) where they changed, from the first sample on.
  std::vector<counter_sample> drop_samples;
};

/// A user's program of the run (docs/your-software.md): how it was run and how it ended.
struct program_record {
  std::string role;        ///< "backend", "proxy" or "client"
  std::string command;     ///< argv after placeholders, joined by spaces
  std::string state;       ///< at the end: "running", "frozen", "killed", "exited N"
  int starts = 0;          ///< 1 + restarts
  int reloads = 0;         ///< proxy: configurations applied by set-endpoints
  std::string stderr_tail; ///< its last stderr lines (the report shows them when the run fails)
  std::string error;       ///< a restart or reload that failed
  std::map<std::string, double> metrics; ///< from its metrics_command, by KEY
};

/// Where part of a run's wall time went (docs/report-json.md, "wall").
struct wall_phase {
  std::string
      name; ///< lab, backends, proxy, observer, clients, timeline, drain, final_census, teardown
  double ms = 0;
};

/// The result of one run.
struct run_result {
  scenario::scenario scenario;
  std::uint64_t seed = 0;
  std::string kernel;           ///< uname -r
  double setup_ms = 0;          ///< building the lab and starting the actors
  double run_ms = 0;            ///< from the start of the timeline to the final census
  std::vector<wall_phase> wall; ///< the whole run's wall time by phase, in the order they ran
  bool interrupted = false;
  std::vector<event_record> events;
  /// Final census per role: "clients", "node", and one per backend name (pods).
  std::map<std::string, observer::census> census;
  /// Counter deltas over the run per role: "clients", "node", "pods" (summed over pods).
  std::map<std::string, observer::counter_map> counters;
  std::vector<listener_track> listeners;
  std::vector<counter_sample> node_counter_samples;
  std::map<std::string, clients::client_results> clients;
  std::map<std::string, backends::backend_stats> backends;
  std::optional<proxy_sim::proxier_stats> proxy;
  std::string rules_listing; ///< iptables -t nat -S of the node at the end (iptables mode)
  std::map<std::size_t, uint64_t> loss_dropped; ///< packets each /loss rule dropped, by index
  /// Source addresses of each client group (index = connection_record::source_index).
  std::map<std::string, std::vector<std::string>> client_addresses;
  /// The node listener port each client group targets (0: a raw target, not a NodePort).
  std::map<std::string, std::uint16_t> client_node_port;
  /// Client groups whose target lies outside the lab (--allow-external): they ran in the host's
  /// namespace, so the run reports their side only.
  std::set<std::string> external_clients;
  /// The service each client group targets ("" for a raw target).
  std::map<std::string, std::string> client_service;
  /// When each service had ready endpoints in effect: [from, to) in ms from the start.
  std::map<std::string, std::vector<std::pair<double, double>>> endpoint_intervals;
  /// The user's programs by name ("proxy" for the node's exec proxy).
  std::map<std::string, program_record> programs;
  /// Bytes exec clients logged as sent upstream per request, by their source address.
  std::map<std::string, std::vector<std::uint32_t>> exec_sent_bytes;
  expect::metric_map metrics;
  std::vector<expect::expectation_result> expectations;

  /// Whether every expectation held (and the run was not interrupted).
  bool passed() const;
  /// The sampler's track of the listener on `port` in namespace `role`, or nullptr.
  const listener_track* find_listener(const std::string& role, std::uint16_t port) const;
};

} // namespace backlog_lab::runner
