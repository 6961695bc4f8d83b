#pragma once
// `--set KEY=V1,V2,...` overrides of a scenario's JSON document, as `run --set` and `sweep --set`
// take them: parsed once here, applied to the document, and the result judged by the strict
// reader, so an override can never make what a scenario file could not.
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "harness/scenario/model.hpp"
#include "harness/scenario/reader.hpp"

namespace backlog_lab::scenario {

/// One `--set`: a key and the values it takes, in the order given (one for `run`, the axis of a
/// sweep for `sweep`).
struct set_override {
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
set_override parse_set(const std::string& text);

/// Whether parse_sets checks that each sysctl set exists on the kernel it runs on.
enum class sysctl_check {
  this_kernel, ///< the labs will set them here
  none,        ///< a sweep's shards being merged: they ran elsewhere, perhaps on other kernels
};

/// Parses every --set (parse_set) and rejects a key given twice and (with
/// sysctl_check::this_kernel) a sysctl this kernel does not have, which would otherwise fail only
/// in the lab.
std::vector<set_override> parse_sets(const std::vector<std::string>& sets, sysctl_check check);

/// Puts `value` (one of `o.values`) at the override's place in `doc`. The parent object or array
/// must exist (a sysctl role object is created); throws input_error naming the --set and the JSON
/// path otherwise.
void apply_set(nlohmann::json& doc, const set_override& o, const nlohmann::json& value);

/// One value chosen for each of some overrides.
using set_choice = std::vector<std::pair<const set_override*, const nlohmann::json*>>;

/// The scenario `doc` (already read once from `source`) with `choice` applied, parsed by the
/// strict reader. An error names the --set values that produced it; where one value is wrong on
/// its own, the error names that one alone (fields that depend on each other, like mode and
/// preset, may be wrong alone and right together, so only a value that fails alone is blamed).
scenario parse_with_sets(const nlohmann::json& doc, const std::string& source,
                         const set_choice& choice);

/// The scenario with `sets` applied, one value each, validated: what `run --set` runs. A list of
/// values is an error that points at `sweep`.
scenario apply_sets(const scenario_source& source, const std::vector<std::string>& sets);

/// A value as it appears in labels and tables: strings without quotes, numbers as JSON.
std::string value_text(const nlohmann::json& value);

} // namespace backlog_lab::scenario
