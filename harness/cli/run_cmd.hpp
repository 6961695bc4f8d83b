#pragma once
// `backlog-lab run`: run a scenario (shipped or a file) and report on it.
#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "harness/scenario/reader.hpp"

namespace backlog_lab::cli {

/// Options of `backlog-lab run`.
struct run_options {
  std::string scenario = ::backlog_lab::scenario::default_scenario; ///< shipped name or path
  bool list = false;                 ///< list the shipped scenarios instead
  std::string json_path;             ///< write the JSON report there ("-": stdout)
  std::string junit_path;            ///< write JUnit XML there
  std::string html_path;             ///< write the HTML page there ("-": stdout)
  std::string connections_path;      ///< write every client connection record as CSV there
  std::optional<std::uint64_t> seed; ///< overrides the scenario's seed
  bool quiet = false;                ///< only failures and the verdict
  bool show_rules = false;           ///< print the node's NAT rules
  std::vector<std::string> sets;     ///< KEY=VALUE overrides, as `sweep --set` with one value
  std::string logs_dir;              ///< exec programs' stdout/stderr go there
  bool allow_external = false;       ///< client targets may lie outside the lab
};

/// Adds the `run` subcommand to `app`; `action` is set to run it when it is chosen.
void setup_run(CLI::App& app, std::function<int()>& action);

/// Runs with `o`; returns the process exit code (docs/exit-codes.md).
int execute_run(const run_options& o);

} // namespace backlog_lab::cli
