#pragma once
// Reports of a run: the terminal summary, the JSON document (docs/report-json.md), the HTML page,
// JUnit XML and the connections CSV.
#include <nlohmann/json.hpp>
#include <ostream>

#include "harness/runner/run_result.hpp"

namespace backlog_lab::report {

/// How much the terminal summary shows.
struct terminal_options {
  bool quiet = false;      ///< only failed expectations and the verdict line
  bool show_rules = false; ///< append the NAT rules as `iptables -t nat -S` lists them
};

/// Writes the human summary: listeners as `ss -ltn` shows them, CLOSE-WAIT per port, counters in
/// `netstat -st` words, client outcomes, findings, and every expectation with PASS or FAIL.
void write_terminal(std::ostream& out, const runner::run_result& r, const terminal_options& o = {});

/// The whole run as JSON: scenario, seed, kernel, events, listeners with their timelines,
/// census, counter deltas, clients with histograms, metrics and expectations.
nlohmann::json to_json(const runner::run_result& r);

/// A latency histogram as run --json lists it: count, min_ms, p50_ms, p90_ms, p99_ms, max_ms and
/// the non-empty buckets (from_ms, to_ms, count; to_ms null for the overflow bin).
nlohmann::json latency_to_json(const clients::latency_histogram& h);

/// A self-contained HTML page that opens offline (inline CSS and SVG, no scripts): findings,
/// expectations, every listener's accept queue over time, the node's drops per second, client
/// outcomes over time, connect and response latency on a log axis, timeline and wall phases.
void write_html(std::ostream& out, const runner::run_result& r);

/// Plain-language answers, from the run's own data, to the incident's three questions: what is
/// in a full accept queue, what it does to traffic, and why 129. One paragraph each; empty if no
/// listener filled.
std::vector<std::string> findings(const runner::run_result& r);

/// The failing testcase an interrupted run (or a sweep that stopped early) adds to its suite.
struct junit_stop {
  std::string testcase = "run completed"; ///< its name; a sweep says "sweep completed"
  std::string message = "interrupted";    ///< why it stopped
};

/// JUnit XML for one or more runs: a testsuite per run, a testcase per expectation, failures
/// with measured and expected values, and `stop`'s testcase for every interrupted run.
void write_junit(std::ostream& out, const std::vector<const runner::run_result*>& runs,
                 const std::string& suite_name = "backlog-lab", const junit_stop& stop = {});

/// Every kept client connection record as CSV: group, source address and port, intended start,
/// start, connect and finish times (ms from the run's start), outcome, errno, bytes.
void write_connections_csv(std::ostream& out, const runner::run_result& r);

/// Escapes text for XML and HTML (&, <, >, ", ') and drops the control characters XML 1.0
/// forbids.
std::string xml_escape(const std::string& text);

/// The `netstat -st` wording of a TcpExt/Tcp counter, or empty if we have none for it.
std::string netstat_words(const std::string& counter);

/// The counters the terminal report and the HTML page show, in the order they show them.
std::vector<std::string> reported_counters();

} // namespace backlog_lab::report
