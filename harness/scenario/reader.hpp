#pragma once
// Reads scenario files strictly: unknown fields are errors, and every error names the file, the
// JSON path (RFC 6901 pointer, e.g. /clients/1/rate_per_s) and what was expected.
#include <string>
#include <vector>

#include "harness/scenario/model.hpp"

namespace backlog_lab::scenario {

/// Parses and validates scenario JSON text; `source` names it in errors. Throws input_error.
scenario parse_scenario(const std::string& text, const std::string& source);

/// Loads a scenario by name of a shipped one ("incident-2018-03") or by file path (anything with
/// a '/' or ending in .json). Throws input_error naming the file or listing the shipped names.
scenario load_scenario(const std::string& name_or_path);

/// The largest scenario file read; the shipped ones are under 100 KiB.
inline constexpr unsigned long long max_scenario_bytes = 4ULL << 20;

/// Reads a scenario file: only a regular file of at most max_scenario_bytes, never blocking on a
/// FIFO. Throws input_error naming the path and what it is instead.
std::string read_scenario_file(const std::string& path);

/// A scenario's text and the name errors give it.
struct scenario_source {
  std::string text;
  std::string source; ///< "builtin:NAME" or the path
};

/// Finds a shipped scenario by name or reads a file (read_scenario_file); throws input_error
/// naming the file or listing the shipped names. An empty name is an error, not the default.
scenario_source read_scenario_source(const std::string& name_or_path);

/// Names of the scenarios compiled into the binary.
std::vector<std::string> builtin_scenario_names();

/// The name `backlog-lab run` uses when given none.
inline constexpr const char* default_scenario = "incident-2018-03";

} // namespace backlog_lab::scenario
