#pragma once
// `backlog-lab doctor`: looks at the listeners of one or every network namespace twice, an
// interval apart, and says per listener in trouble what its accept queue holds, who owns it,
// whether it is still dropping and whether anything was accepted in between, with a verdict
// and its evidence (docs/doctor.md). It only reads (sock_diag dumps and /proc).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "harness/doctor/take.hpp"
#include "harness/observer/census.hpp"
#include "harness/observer/owners.hpp"

namespace backlog_lab::doctor {

/// Version of the JSON document (docs/doctor.md); bumped when a key changes meaning or goes.
inline constexpr const char* json_format = "backlog-lab.doctor/1";

/// What the two looks at a listener say about its owner.
enum class verdict {
  healthy,                      ///< nothing waits at the end and nothing was dropped
  burst_drained,                ///< children were queued, some were accepted, no new drops
  accepts_slower_than_arrivals, ///< it accepts, but the queue grows, is full or drops
  never_accepts,                ///< children waited the whole interval and none was accepted
};

/// "healthy", "burst-drained", "accepts-slower-than-arrivals", "never-accepts".
const char* verdict_name(verdict v) noexcept;

/// Whether `v` is trouble (doctor exits 1): never-accepts or accepts-slower-than-arrivals.
constexpr bool is_trouble(verdict v) noexcept {
  return v == verdict::never_accepts || v == verdict::accepts_slower_than_arrivals;
}

/// One listener seen at two moments.
struct listener_finding {
  observer::listener_summary first; ///< at the first look
  observer::listener_summary last;  ///< at the second look (what the report shows)
  double interval_s = 0;
  std::uint32_t new_drops = 0; ///< sk_drops growth between the looks
  double drops_per_second = 0; ///< new_drops / interval_s
  std::uint32_t stayed = 0;    ///< un-accepted at both looks (same local and peer address:port)
  std::uint32_t left = 0;      ///< un-accepted at the first look, gone from sock_diag at the second
  /// Of those, reset by their client while queued: gone from sock_diag (state CLOSE, unhashed)
  /// but still counted in Recv-Q until accepted. Measured as the growth of Recv-Q minus the
  /// visible un-accepted children.
  std::uint32_t reset_in_queue = 0;
  std::uint32_t accepted = 0; ///< left - reset_in_queue: taken by accept()
  std::uint32_t arrived = 0;  ///< un-accepted at the second look only
  bool accepted_any = false;  ///< accepted > 0
  verdict v = verdict::healthy;
  std::vector<std::string> evidence; ///< the facts the verdict rests on, as sentences
  std::vector<observer::socket_holder> owners;
  bool took = false;                   ///< --peek/--drain took from this listener
  std::vector<taken_connection> taken; ///< what was taken (and closed)
  std::string take_error;              ///< why nothing could be taken
};

/// Compares two looks at one listener (`first` may be null: it was not there) and decides.
/// Needs both summaries' unaccepted_sockets (census_options::list_unaccepted). Pure.
listener_finding compare(const observer::listener_summary* first,
                         const observer::listener_summary& last, double interval_s);

/// One network namespace examined.
struct namespace_finding {
  std::string name;        ///< "current", "pid 1448 (kube-proxy)", a path
  unsigned long inode = 0; ///< nsfs inode
  pid_t pid = 0;           ///< a process in it, 0 if not named by one
  std::string comm;
  std::uint32_t listeners = 0;            ///< listeners seen at the second look
  std::vector<listener_finding> findings; ///< listeners with a queue or new drops
  std::string error;                      ///< non-empty: it could not be read (skipped)
};

/// Where doctor looks.
struct target {
  std::optional<pid_t> pid; ///< the namespace of this process
  std::string netns_path;   ///< or of this namespace file
  bool all_netns = false;   ///< or every namespace with a process in it (/proc/*/ns/net)
};

/// Everything doctor found.
struct report {
  std::string kernel;
  double interval_s = 0;
  std::vector<namespace_finding> namespaces;
  /// Listeners in trouble (is_trouble) over all namespaces.
  std::size_t trouble() const;
};

/// Looks at `where` twice, `interval` apart, resolves the owners of the listeners it reports
/// and returns the findings. Throws lab_error when a single target cannot be opened or read;
/// with all_netns a namespace that vanishes or cannot be read gets an error entry instead.
report examine(const target& where, std::chrono::milliseconds interval);

/// What to take from the queues after looking (doctor --peek / --drain).
struct take_request {
  std::size_t peek = 0;   ///< --take N: up to N connections from each listener with children
  bool drain = false;     ///< every un-accepted child of each never-accepts listener
  std::uint16_t port = 0; ///< only listeners on this port (0: all)
};

/// Takes from the listeners of `r` as `what` asks, through their first owner, filling each
/// finding's taken/take_error. Returns how many connections were taken.
std::size_t take(report& r, const take_request& what);

/// The report as text: per listener what is queued, who owns it, whether it still drops.
void print_text(std::ostream& out, const report& r);
/// The report as JSON (format json_format), pretty-printed.
void print_json(std::ostream& out, const report& r);

} // namespace backlog_lab::doctor
