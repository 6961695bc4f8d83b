#pragma once
// What a sweep varies: `--set KEY=V1,V2,...` axes (harness/scenario/overrides.hpp) over a
// scenario, and the cells (the cartesian product), each checked by the strict scenario reader
// before anything runs.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "harness/scenario/model.hpp"
#include "harness/scenario/overrides.hpp"
#include "harness/scenario/reader.hpp"

namespace backlog_lab::sweep {

/// An axis of a sweep: one `--set` with the values it takes (harness/scenario/overrides.hpp).
using axis = scenario::set_override;
using scenario::sysctl_check;
using scenario::value_text;

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

/// Parses every --set, applies each combination to the document and parses the result with the
/// strict reader, so a bad key or value is an input_error (naming the --set and the JSON path)
/// before any cell runs. No --set gives one cell: the scenario as it is. Also rejects a key
/// given twice and (with sysctl_check::this_kernel) a sysctl this kernel does not have.
plan make_plan(const scenario_text& scenario, const std::vector<std::string>& sets,
               sysctl_check check = sysctl_check::this_kernel);

/// The seed of repeat `repeat` (0-based): every cell's repeat r uses the same seed, so cells
/// differ only by their settings (common random numbers). Deterministic in `sweep_seed`.
std::uint64_t repeat_seed(std::uint64_t sweep_seed, std::size_t repeat);

} // namespace backlog_lab::sweep
