#pragma once
// Reports of a sweep: the terminal table, CSV, JSON, a self-contained HTML page (inline SVG
// charts, no scripts) and JUnit XML. docs/sweep.md describes each format.
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "harness/sweep/sweep.hpp"

namespace backlog_lab::sweep {

/// A short column heading for a metric ("overflows" for counter.node.TcpExtListenOverflows,
/// "web ans%" for clients.web.answered_share); the metric itself when there is none.
std::string short_label(const std::string& metric, const sweep_result& r);

/// A metric's value as the table shows it: shares in percent, times in ms, counts as integers.
std::string format_value(const std::string& metric, double value);

/// The table: one row per finished cell with its settings, each metric's mean (± the standard
/// deviation over repeats when there are several) and the expectations held; a legend of the
/// column headings follows.
void write_table(std::ostream& out, const sweep_result& r);

/// One line on how the runs shared the machine: jobs, CPUs, busy CPUs on average and the
/// clients' worst start lag, and whether that shows interference.
std::string parallel_summary(const sweep_result& r);

/// One line: PASS / FAIL / INTERRUPTED with cell counts.
std::string verdict(const sweep_result& r);

/// CSV, one row per finished cell: cell, one column per --set key, repeats, expectations_held,
/// expectations_total, then NAME.mean, NAME.min, NAME.max, NAME.stddev for every metric.
void write_csv(std::ostream& out, const sweep_result& r);

/// The whole sweep as JSON (docs/sweep.md): axes, metrics, and per cell its settings, seeds,
/// expectations, metric summaries with per-repeat values, and each repeat's failed expectations.
nlohmann::json to_json(const sweep_result& r);

/// One run of a cell as the sweep's JSON holds it (docs/sweep.md, cells[].runs[]): what the
/// reports read of it (seed, times, every expectation, metrics, node listeners' queue samples,
/// node counter samples) and `info`.
nlohmann::json run_to_json(const runner::run_result& run, const run_info& info);

/// The inverse of run_to_json: a trimmed run of `s` (clients and census left empty) and its info.
/// Throws nlohmann::json::exception on a missing or mistyped field.
runner::run_result run_from_json(const nlohmann::json& j, const scenario::scenario& s,
                                 run_info& info);

/// A self-contained HTML page that opens offline: an overview table, `chart_metric` across the
/// cells, and per cell the node listeners' accept queue over time, node TcpExtListenDrops per
/// second, client outcome shares and connect-latency percentiles. Empty `chart_metric`: the
/// first of r.metrics.
void write_html(std::ostream& out, const sweep_result& r, const std::string& chart_metric = "");

/// JUnit XML: a testsuite per cell and repeat (named with the cell's settings), a testcase per
/// expectation; an interrupted or failed sweep adds a failing "sweep completed" testcase.
void write_junit(std::ostream& out, const sweep_result& r);

} // namespace backlog_lab::sweep
