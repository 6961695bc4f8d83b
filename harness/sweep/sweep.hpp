#pragma once
// Runs a sweep: every cell of a plan `repeat` times, each run in fresh namespaces (run_scenario
// builds and tears down its own lab), and summarises the chosen metrics per cell.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
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

/// How one run of a cell went, besides what it measured.
struct run_info {
  std::size_t repeat = 0; ///< 0-based; its seed is repeat_seed(sweep seed, repeat)
  double wall_ms = 0;     ///< the run's wall time, lab set-up and teardown included
  /// CPU time (user + system) of the run and of the processes it started; empty if not measured.
  std::optional<double> cpu_ms;
  /// The clients' worst start lag (max:clients.*.max_start_lag_ms): how late connections began
  /// against their schedule, the first thing a starved CPU shows; empty without clients.
  std::optional<double> start_lag_ms;
};

/// What one cell produced.
struct cell_result {
  cell settings;                    ///< the cell: its values and its scenario
  std::vector<std::uint64_t> seeds; ///< per run, in repeat order
  std::vector<run_info> info;       ///< per run, in repeat order
  /// Per repeat, trimmed: census socket lists and client connection records are dropped (the
  /// metrics already hold what they gave); listeners, counter samples and clients stay.
  std::vector<runner::run_result> runs;
  std::map<std::string, summary> metrics; ///< the sweep's metrics that had a value
  std::size_t expectations_held = 0;      ///< over all repeats
  std::size_t expectations_total = 0;
  double duration_ms = 0; ///< the sum of its runs' wall times

  /// Every expectation held in every repeat.
  bool passed() const { return expectations_held == expectations_total; }
};

/// A fixed slice of a sweep's runs: run k (k = cell * repeat + r, 0-based) belongs to shard
/// k % count + 1. One shard of one is the whole sweep.
struct shard_spec {
  std::size_t index = 1; ///< 1..count
  std::size_t count = 1;
};

/// Parses "I/N" (1 <= I <= N); throws input_error naming `--shard`.
shard_spec parse_shard(const std::string& text);

/// One run of a plan: a cell (0-based) and a repeat (0-based).
struct run_slot {
  std::size_t cell = 0;
  std::size_t repeat = 0;
};

/// The runs of `shard` among `cells` x `repeat`, in the order an unsharded sweep runs them.
std::vector<run_slot> shard_runs(std::size_t cells, std::size_t repeat, const shard_spec& shard);

/// Whether parallel runs may have disturbed each other, from what each run measured.
struct interference {
  std::size_t jobs = 1;         ///< runs at once
  std::size_t cpus = 1;         ///< CPUs this process may run on (sched_getaffinity)
  double busy_cpus = 0;         ///< CPU time of all runs / the sweep's wall time
  double max_start_lag_ms = 0;  ///< the worst run's clients' start lag
  std::size_t lagging_runs = 0; ///< runs whose clients started > lag_limit_ms late
  static constexpr double lag_limit_ms = 20;
  std::vector<std::string> notes; ///< warnings for the report, in order
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
  std::size_t cells_planned = 0;    ///< cells of the whole plan
  shard_spec shard;                 ///< which slice of the runs this result holds
  std::size_t runs_planned = 0;     ///< runs of this shard (cells x repeat when unsharded)
  /// The scenario as written and the --set arguments: what merge rebuilds the cells from.
  nlohmann::json document;
  std::vector<cell_result> cells;
  interference parallel;
  bool interrupted = false; ///< stopped by a signal; unfinished cells dropped
  std::string error;        ///< a cell's lab could not be built: why (sweep stopped)
  double elapsed_ms = 0;

  /// Runs of the finished cells.
  std::size_t runs_finished() const;
  /// Every planned run finished and every expectation held in each.
  bool passed() const;
};

/// Where a sweep is, for progress displays.
struct progress {
  std::size_t cells_done = 0;
  std::size_t cells_total = 0;
  std::size_t runs_done = 0; ///< with --jobs: runs finished (the repeat fields then say nothing)
  std::size_t runs_total = 0;
  std::size_t running = 0; ///< runs in progress
  std::size_t repeat = 0;  ///< the current cell's repeat about to run (0-based)
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
  /// Runs at once. 1: in this process, one after another; more: each run in a child process of
  /// its own (fork), so parallel runs share nothing but the kernel.
  std::size_t jobs = 1;
  shard_spec shard; ///< the slice of the runs to do
};

/// Runs every cell of `p` (those of options.shard). Throws nothing for a failing cell: a lab
/// error stops the sweep and is kept in `error`, with the cells finished before it.
sweep_result run_sweep(const plan& p, const sweep_options& options);

/// Recomputes `c.metrics` from its runs for `metrics`.
void summarise_cell(cell_result& c, const std::vector<std::string>& metrics);

/// CPUs this process may run on (sched_getaffinity; else the online CPUs).
std::size_t usable_cpus();

/// Fills `r.parallel` from the runs' start lags and, when they ran on this machine
/// (`same_machine`), their CPU times (r.elapsed_ms and parallel.jobs already set).
void assess_interference(sweep_result& r, bool same_machine = true);

/// The default metrics for a scenario, given one run of it: node TcpExtListenOverflows,
/// TcpExtListenDrops, TcpExtTCPReqQFullDrop, TcpExtSyncookiesSent, TcpExtEmbryonicRsts; the
/// clients' TcpExtTCPSynRetrans; per client group the answered, syn_unanswered, unanswered,
/// reset, refused and other shares and connect p50/p99; per node listener its backlog, peak
/// and full_ms.
std::vector<std::string> default_metrics(const runner::run_result& first);

/// The outcome names whose `<name>_share` metrics add up to 1 (for stacked bars).
const std::vector<std::string>& outcome_names();

} // namespace backlog_lab::sweep
