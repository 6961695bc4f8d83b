#pragma once
// The scenario runner: builds the lab, starts the actors, plays the timeline, samples the
// observer, stops everything and evaluates the expectations.
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "harness/runner/run_result.hpp"
#include "harness/scenario/model.hpp"

namespace backlog_lab::runner {

/// How to run, beyond the scenario itself.
struct run_options {
  std::optional<std::uint64_t> seed{};           ///< overrides the scenario's seed
  std::function<void(const std::string&)> log{}; ///< progress lines (nullptr: silent)
  /// Set from a signal handler to stop the run early; the lab is still torn down.
  const std::atomic<bool>* stop_requested = nullptr;
  /// Where exec programs' stdout/stderr go (NAME.stdout/.stderr); empty: kept in memory.
  std::string logs_dir{};
  /// Let client targets lie outside the lab's own networks (docs/your-software.md).
  bool allow_external = false;
};

/// Runs `s` to the end (or until stopped) and returns what it measured. Throws input_error or
/// lab_error if the lab cannot be built; nothing is left behind either way.
run_result run_scenario(const scenario::scenario& s, const run_options& options = {});

/// The metrics of a finished run (docs/metrics.md); run_scenario fills result.metrics with it.
expect::metric_map collect_metrics(const run_result& result);

} // namespace backlog_lab::runner
