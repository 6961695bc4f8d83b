#pragma once
// `backlog-lab sweep`: run a scenario over a matrix of settings and report per cell.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace backlog_lab::cli {

/// Options of `backlog-lab sweep` (docs/sweep.md).
struct sweep_options {
  std::string scenario;             ///< shipped name or path
  std::vector<std::string> sets;    ///< KEY=V1,V2,... (ROLE:net.x.y or a JSON pointer)
  std::size_t repeat = 1;           ///< runs per cell
  std::vector<std::string> metrics; ///< columns; empty: the default set
  std::string csv_path;             ///< "-": stdout
  std::string json_path;            ///< "-": stdout
  std::string html_path;
  std::string junit_path;
  std::optional<std::uint64_t> seed; ///< sweep seed; default: the scenario's, else the clock
  bool quiet = false;                ///< no progress, no table: the verdict only
  std::size_t jobs = 1;              ///< runs at once, each in a child process when > 1
  std::string shard;                 ///< "I/N": the slice of the runs to do; empty: all
};

/// Adds the `sweep` subcommand to `app`; `action` is set to run it when it is chosen.
void setup_sweep(CLI::App& app, std::function<int()>& action);

/// Runs the sweep; returns the process exit code (docs/exit-codes.md).
int execute_sweep(const sweep_options& o);

/// Options of `backlog-lab merge` (docs/sweep.md, "Shards and merge").
struct merge_options {
  std::vector<std::string> files; ///< the shards' sweep --json reports
  std::string csv_path;           ///< "-": stdout
  std::string json_path;          ///< "-": stdout
  std::string html_path;
  std::string junit_path;
  std::string chart_metric; ///< charted across the cells in the HTML; empty: the first metric
  bool quiet = false;
};

/// Adds the `merge` subcommand to `app`.
void setup_merge(CLI::App& app, std::function<int()>& action);

/// Merges the reports; returns the process exit code (as the sweep's would be).
int execute_merge(const merge_options& o);

} // namespace backlog_lab::cli
