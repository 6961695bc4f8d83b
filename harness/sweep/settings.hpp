#pragma once
// What a sweep varies: `--set KEY=V1,V2,...` axes applied to a scenario's JSON document, and the
// cells (the cartesian product), each checked by the strict scenario reader before anything runs.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "harness/scenario/model.hpp"
#include "harness/scenario/reader.hpp"

namespace backlog_lab::sweep {

/// One `--set`: a key and the values it takes, in the order given.
struct axis {
  std::string text;    ///< the --set argument as given, for messages
  std::string key;     ///< "node:net.core.somaxconn" or "/proxy/backlog"
  std::string role;    ///< sysctl key: the namespace role ("clients", "node", "pods"); else empty
  std::string sysctl;  ///< sysctl key: its name ("net.core.somaxconn"); else empty
  std::string pointer; ///< where the value goes in the document (RFC 6901 pointer)
  std::vector<nlohmann::json> values;
  std::vector<std::string> texts; ///< each value as written (a version "1.20" is not 1.2)
};

/// Parses `KEY=V1,V2,...`. KEY is `ROLE:net.x.y` (a sysctl of a namespace role) or a JSON
/// pointer (`/clients/0/rate_per_s`). Values split at commas outside brackets and quotes; each is
/// read as JSON if it is JSON (16, true, "x", [250,500]), else taken as a string; a number set
/// where the scenario has a string (`/proxy/preset=1.20`) is taken as written. Throws
/// input_error naming the --set.
axis parse_set(const std::string& text);

/// Puts `value` at the axis' place in `doc`. The parent object or array must exist (a sysctl
/// role object is created); throws input_error naming the --set and the JSON path otherwise.
void apply(nlohmann::json& doc, const axis& a, const nlohmann::json& value);

/// A scenario's text and the name errors give it (a shipped name or a file path).
using scenario_text = scenario::scenario_source;

/// One combination of values.
struct cell {
  std::size_t index = 0;
  std::vector<std::pair<std::string, nlohmann::json>> settings; ///< axis key -> value, axis order
  scenario::scenario scenario;                                  ///< the document with them, parsed

  /// "node:net.core.somaxconn=16 /proxy/backlog=64" (empty without axes).
  std::string label() const;
};

/// The cells of a sweep, every one already validated.
struct plan {
  std::string source;
  nlohmann::json document; ///< the scenario as written
  std::vector<axis> axes;
  std::vector<cell> cells; ///< the cartesian product, the last axis varying fastest
};

/// Whether make_plan checks that each swept sysctl exists on the kernel it runs on.
enum class sysctl_check {
  this_kernel, ///< a sweep: its labs will set them here
  none,        ///< a merge: the shards ran elsewhere, perhaps on other kernels
};

/// Parses every --set, applies each combination to the document and parses the result with the
/// strict reader, so a bad key or value is an input_error (naming the --set and the JSON path)
/// before any cell runs. No --set gives one cell: the scenario as it is. Also rejects a key
/// given twice and (with sysctl_check::this_kernel) a sysctl this kernel does not have.
plan make_plan(const scenario_text& scenario, const std::vector<std::string>& sets,
               sysctl_check check = sysctl_check::this_kernel);

/// Shorthand: the scenario with `sets` applied (one value each), validated. For `run --set`.
scenario::scenario apply_sets(const scenario_text& scenario, const std::vector<std::string>& sets);

/// The seed of repeat `repeat` (0-based): every cell's repeat r uses the same seed, so cells
/// differ only by their settings (common random numbers). Deterministic in `sweep_seed`.
std::uint64_t repeat_seed(std::uint64_t sweep_seed, std::size_t repeat);

/// A value as it appears in labels and tables: strings without quotes, numbers as JSON.
std::string value_text(const nlohmann::json& value);

} // namespace backlog_lab::sweep
