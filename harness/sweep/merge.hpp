#pragma once
// Joining the JSON reports of a sweep's shards (`sweep --shard I/N --json F`) into the result of
// the whole sweep, which every sweep report writer takes (docs/sweep.md, "Shards and merge").
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "harness/sweep/sweep.hpp"

namespace backlog_lab::sweep {

/// A shard's report and the file it came from (for messages).
struct shard_file {
  std::string path;
  nlohmann::json report;
};

/// Whether `j` looks like a sweep's JSON report (rather than a run's).
bool is_sweep_report(const nlohmann::json& j);

/// Joins every shard of one sweep: the cells are rebuilt from the recorded scenario document and
/// --sets, each cell's runs gathered from the shards in repeat order and summarised again.
/// Throws input_error naming the file and field when the reports are not shards of one sweep, a
/// shard is given twice or one is missing.
sweep_result merge_shards(const std::vector<shard_file>& files);

/// Whether `j` is a `run --json` report (format backlog-lab-run/1).
bool is_run_report(const nlohmann::json& j);

/// Joins the client populations of several `run --json` reports (docs/sweep.md, "Merging run
/// reports"): per client group, counts and outcomes summed, latency histograms merged bin by bin
/// (percentiles read from the merged bins, min and max exact), peak_in_flight and
/// max_start_lag_ms the largest. Throws input_error naming the file and JSON path of a bad one.
nlohmann::json merge_run_reports(const std::vector<shard_file>& files);

/// The merged populations as a table: per group connections, outcome shares and connect and
/// response latency percentiles.
void write_run_merge_table(std::ostream& out, const nlohmann::json& merged);

} // namespace backlog_lab::sweep
