#pragma once
// `backlog-lab check`: read scenarios through the one reader, without building a lab (no root).
#include <CLI/CLI.hpp>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace backlog_lab::cli {

/// Options of `backlog-lab check`.
struct check_options {
  std::vector<std::string> scenarios; ///< shipped names or file paths, at least one
};

/// Adds the `check` subcommand to `app`; `action` is set to run it when it is chosen.
void setup_check(CLI::App& app, std::function<int()>& action);

/// Reads each scenario: `OK NAME` on `out` or the reader's error on `err`, one line per argument.
/// Returns 0 when all are valid, 2 (bad_input) otherwise (docs/exit-codes.md).
int execute_check(const check_options& o, std::ostream& out, std::ostream& err);

} // namespace backlog_lab::cli
