#pragma once
// The comparison's results: every figure per run, the ratios against the peers with their
// spread and target, printed as a table and written as JSON.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "bench/driver/measure.hpp"

namespace backlog_lab::bench {

/// A ratio of ours to a peer's (or a value of ours), one value per run, and its target.
struct ratio_row {
  std::string section;
  std::string what; ///< "observer full census / ss -tan (time)"
  figure ratio;
  std::string target; ///< "<= 0.50", "", ...
  std::optional<double> limit;
  bool lower_is_better = true;
  std::optional<double> tolerance; ///< two-sided: met when |median - limit| <= tolerance

  /// Sets the target: median >= `value` (printed with two decimals).
  ratio_row& at_least(double value);
  /// Sets the target: median <= `value`.
  ratio_row& at_most(double value);
  /// Whether the median meets the target (true when there is none).
  bool met() const;
  /// How far the median is from the limit, as text ("met by 31%", "missed by 12%").
  std::string margin() const;
};

/// Everything one `bench/compare` produced.
struct compare_report {
  std::map<std::string, std::map<std::string, figure>> figures; ///< section -> name -> runs
  std::vector<ratio_row> rows;
  std::map<std::string, std::string> notes; ///< section -> what was set up, or why it was skipped

  /// Adds one run's value of `section.name`.
  void add(const std::string& section, const std::string& name, const std::string& unit,
           double value);
  const figure* find(const std::string& section, const std::string& name) const;
  /// Adds a row whose runs are the per-run quotients of two figures.
  ratio_row& ratio(const std::string& section, const std::string& what, const std::string& ours,
                   const std::string& theirs);
  /// Adds a row that shows a figure of ours itself (`what` should name its unit).
  ratio_row& value(const std::string& section, const std::string& what, const std::string& name);

  /// The table of ratios and targets, then every figure with its spread.
  void print(std::ostream& out) const;
  /// The ratios and targets as a Markdown table (for docs/performance.md).
  void print_markdown(std::ostream& out) const;
  /// The JSON document: machine, date, command, load, figures, ratios, targets.
  nlohmann::json to_json() const;
};

} // namespace backlog_lab::bench
