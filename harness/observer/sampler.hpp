#pragma once
// A timer-driven sampler: every N ms, a summary-only census and selected counters of one or
// more namespaces, recorded into a timeline with per-listener derived stats.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/observer/census.hpp"
#include "harness/observer/counters.hpp"

namespace backlog_lab::observer {

/// The counters a sampler records unless told otherwise (docs/reference/kernel.md section 4).
std::vector<std::string> default_sampled_counters();

/// One namespace a sampler watches.
struct sampler_target {
  std::string name;               ///< label in the timeline, e.g. "node"
  const lab::netns* ns = nullptr; ///< nullptr: the namespace of the thread that builds the sampler
};

/// How often and what to sample.
struct sampler_options {
  std::chrono::milliseconds interval{100};
  std::vector<std::string> counters = default_sampled_counters(); ///< nstat names
};

/// A listener's queue at one sample.
struct listener_point {
  std::uint32_t listener = 0; ///< index into timeline::listeners
  std::uint32_t accept_queue = 0;
  std::uint32_t backlog = 0;
  std::uint32_t drops = 0; ///< sk_drops at this sample (since the listener was opened)
  bool operator==(const listener_point&) const = default;
};

/// One namespace at one sample.
struct namespace_point {
  state_counts totals;
  std::uint32_t unaccepted_close_wait = 0;
  /// Deltas since the sampler started, in timeline::counter_names order (0 if the kernel lacks
  /// one).
  std::vector<std::int64_t> counters;
};

/// Everything seen at one moment.
struct sample {
  double t_ms = 0;                         ///< since start()
  std::vector<namespace_point> namespaces; ///< one per target, in target order
  std::vector<listener_point> listeners;   ///< every listener present at this sample
};

/// One listener over the whole timeline, with derived stats.
struct listener_track {
  std::size_t ns = 0; ///< index into timeline::namespaces
  endpoint local;
  bool v6only = false;
  std::uint32_t backlog = 0; ///< at its last sample
  std::uint32_t peak_accept_queue = 0;
  std::uint32_t drops = 0;             ///< sk_drops at its last sample
  double time_full_ms = 0;             ///< sample-and-hold: full at a sample = full until the next
  std::optional<double> first_full_ms; ///< first sample at which accept_queue > backlog
  double first_seen_ms = 0;
  double last_seen_ms = 0;
  bool last_full = false;
  bool present = false; ///< seen at the latest sample
};

/// What a sampler recorded.
struct timeline {
  std::chrono::milliseconds interval{0};
  std::vector<std::string> namespaces;    ///< target names
  std::vector<std::string> counter_names; ///< the sampled counters
  std::vector<listener_track> listeners;
  std::vector<sample> samples;

  /// The listener of namespace `ns` (by name) on `local`, or nullptr.
  const listener_track* find_listener(std::string_view ns, const endpoint& local) const;
  /// Index of counter `name` in counter_names, or -1.
  int counter_index(std::string_view name) const;
};

/// Samples namespaces on an io_context timer (single-threaded; the census is a blocking
/// netlink dump of a few milliseconds at most for lab-sized namespaces).
class sampler {
public:
  /// Opens a census reader and a counter reader in each target (setns on the calling thread).
  sampler(net::io_context& io, const std::vector<sampler_target>& targets,
          sampler_options options = {});
  sampler(const sampler&) = delete;
  sampler& operator=(const sampler&) = delete;

  /// Takes the counter baselines and the first sample (t = 0), then samples every interval.
  void start();
  /// Stops the timer; what was recorded stays.
  void stop();
  /// Takes one sample now (also usable without start(): then t counts from construction).
  void sample_now();
  const timeline& result() const noexcept { return timeline_; }

private:
  struct target_state {
    census_reader sockets;
    counter_reader counters;
    counter_snapshot baseline;
    counter_snapshot current;
    observer::census scratch;
  };
  void take_sample(double t_ms);
  void do_wait();
  void on_wait(const boost::system::error_code& ec);
  std::uint32_t track(std::size_t ns, const listener_summary& l, double t_ms);

  net::steady_timer timer_;
  std::vector<target_state> targets_;
  timeline timeline_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point next_;
  bool running_ = false;
};

} // namespace backlog_lab::observer
