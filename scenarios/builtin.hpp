#pragma once
// The scenarios shipped in scenarios/*.json, embedded at build time.
#include <span>
#include <string_view>

namespace backlog_lab::scenarios {

/// One shipped scenario: its name (the file name without .json) and its JSON text.
struct builtin_scenario {
  std::string_view name;
  std::string_view json;
};

/// Every shipped scenario, sorted by file name.
std::span<const builtin_scenario> builtin_scenarios();

} // namespace backlog_lab::scenarios
