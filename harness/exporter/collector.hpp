#pragma once
// What `backlog-lab export` serves: per listener its accept queue, backlog and un-accepted
// children, per network namespace its socket totals and the TcpExt counters of listen drops, in
// the Prometheus text format (docs/exporter.md lists every metric). It only reads: sock_diag
// dumps and /proc files; nothing here can accept, take or change a connection.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "harness/lab/netns.hpp"
#include "harness/observer/census.hpp"
#include "harness/observer/counters.hpp"
#include "harness/observer/namespaces.hpp"
#include "harness/observer/owners.hpp"

namespace backlog_lab::exporter {

/// Which network namespaces a collector reads.
struct collect_target {
  std::optional<pid_t> pid; ///< the namespace of this process
  std::string netns_path;   ///< or of this namespace file
  bool all_netns = false;   ///< or every namespace of the machine (/proc/*/ns/net)
};

/// What one namespace held at one scrape.
struct namespace_reading {
  observer::namespace_entry entry;
  observer::census census; ///< summary only: listeners and totals
  observer::counter_map counters;
};

/// The TcpExt/Tcp counters exported per namespace: the nstat name and the metric name.
struct exported_counter {
  const char* nstat_name;
  const char* metric;
  const char* help;
};
/// The exported counters, in output order.
const std::vector<exported_counter>& exported_counters();

/// Renders readings (and the collector's own figures) as Prometheus text; `owners` (by listener
/// inode, observer::find_owners) name each listener's processes.
std::string render(const std::vector<namespace_reading>& readings, double scrape_seconds,
                   std::uint64_t namespace_errors, const observer::owner_map& owners = {});

/// Reads its target namespaces on each collect(); keeps nothing that would hold a namespace of
/// `--all-netns` alive between scrapes (a pod's namespace must be free to go away).
class collector {
public:
  /// Opens the target; throws lab_error if a --pid/--netns target cannot be opened.
  explicit collector(collect_target target);
  collector(collector&&) noexcept;
  collector& operator=(collector&&) noexcept;
  ~collector();

  /// One scrape: reads every target namespace and renders the text. A namespace that vanished
  /// or cannot be read is left out and counted in backlog_lab_exporter_namespace_errors_total;
  /// only an unreadable single target throws (lab_error).
  std::string collect();
  /// Reads `entries` (as observer::list_network_namespaces() gives them) into last_readings(); one
  /// that cannot be opened or read (its processes exited, pid reused, no permission) is skipped and
  /// counted, never waited for.
  void read_namespaces(std::vector<observer::namespace_entry> entries);
  /// Namespaces skipped since construction.
  std::uint64_t namespace_errors() const noexcept { return namespace_errors_; }
  /// The namespaces read by the last collect(), in output order.
  const std::vector<namespace_reading>& last_readings() const noexcept { return readings_; }

private:
  void read_one(namespace_reading& r, const lab::netns* ns);

  collect_target target_;
  lab::netns ns_; ///< --pid/--netns target (invalid: current namespace or --all-netns)
  observer::namespace_entry single_;
  std::optional<observer::census_reader> reader_; ///< single target: reused between scrapes
  std::optional<observer::counter_reader> counters_;
  std::vector<namespace_reading> readings_;
  std::uint64_t namespace_errors_ = 0;
};

} // namespace backlog_lab::exporter
