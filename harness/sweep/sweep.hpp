#pragma once
// Runs a sweep: every cell of a plan `repeat` times, each run in fresh namespaces (run_scenario
// builds and tears down its own lab), and summarises the chosen metrics per cell.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/runner/run_result.hpp"
#include "harness/sweep/settings.hpp"

namespace backlog_lab::sweep {

/// Mean and spread of one metric over a cell's repeats (those where it had a value).
struct summary {
  std::size_t n = 0;
  double mean = 0;
  double min = 0;
  double max = 0;
  double stddev = 0;          ///< sample standard deviation (n - 1); 0 for one value
  std::vector<double> values; ///< per repeat, in order (repeats without a value left out)
};

/// Summarises `values` (empty: n = 0).
summary summarise(const std::vector<double>& values);

/// What one cell produced.
struct cell_result {
  cell settings;                    ///< the cell: its values and its scenario
  std::vector<std::uint64_t> seeds; ///< per repeat
  /// Per repeat, trimmed: census socket lists and client connection records are dropped (the
  /// metrics already hold what they gave); listeners, counter samples and clients stay.
  std::vector<runner::run_result> runs;
  std::map<std::string, summary> metrics; ///< the sweep's metrics that had a value
  std::size_t expectations_held = 0;      ///< over all repeats
  std::size_t expectations_total = 0;
  double duration_ms = 0; ///< wall time of the cell, setup included

  /// Every expectation held in every repeat.
  bool passed() const { return expectations_held == expectations_total; }
};

/// A whole sweep; `cells` holds the finished cells only.
struct sweep_result {
  std::string scenario; ///< the scenario's name
  std::string source;   ///< file or builtin:NAME
  std::string kernel;
  std::uint64_t seed = 0;
  std::size_t repeat = 1;
  std::vector<axis> axes;
  std::vector<std::string> metrics; ///< in column order
  std::size_t cells_planned = 0;
  std::vector<cell_result> cells;
  bool interrupted = false; ///< stopped by a signal; unfinished cells dropped
  std::string error;        ///< a cell's lab could not be built: why (sweep stopped)
  double elapsed_ms = 0;

  /// Every cell finished and every expectation held in each.
  bool passed() const;
};

/// Where a sweep is, for progress displays.
struct progress {
  std::size_t cells_done = 0;
  std::size_t cells_total = 0;
  std::size_t repeat = 0; ///< the current cell's repeat about to run (0-based)
  std::size_t repeats = 1;
  const cell* current = nullptr; ///< null once everything is done
  double elapsed_ms = 0;
  std::optional<double> eta_ms; ///< from the mean cell (or run) duration so far
};

/// How to run a sweep.
struct sweep_options {
  std::size_t repeat = 1;
  std::uint64_t seed = 0;                            ///< repeat r uses repeat_seed(seed, r)
  std::vector<std::string> metrics;                  ///< empty: default_metrics()
  const std::atomic<bool>* stop_requested = nullptr; ///< checked by each run and between runs
  std::function<void(const progress&)> on_progress;  ///< before each run and at the end
  std::function<void(const std::string&)> log;       ///< runner progress lines (nullptr: none)
};

/// Runs every cell of `p`. Throws nothing for a failing cell: a lab error stops the sweep and is
/// kept in `error`, with the cells finished before it.
sweep_result run_sweep(const plan& p, const sweep_options& options);

/// The default metrics for a scenario, given one run of it: node TcpExtListenOverflows,
/// TcpExtListenDrops, TcpExtTCPReqQFullDrop, TcpExtSyncookiesSent, TcpExtEmbryonicRsts; the
/// clients' TcpExtTCPSynRetrans; per client group the answered, syn_unanswered, unanswered,
/// reset, refused and other shares and connect p50/p99; per node listener its backlog, peak
/// and full_ms.
std::vector<std::string> default_metrics(const runner::run_result& first);

/// The outcome names whose `<name>_share` metrics add up to 1 (for stacked bars).
const std::vector<std::string>& outcome_names();

} // namespace backlog_lab::sweep
