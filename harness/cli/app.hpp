#pragma once
// The backlog-lab command line: composes the subcommands and maps errors to exit codes.

namespace backlog_lab::cli {

/// Parses argv, runs the chosen subcommand and returns the exit code (docs/exit-codes.md).
int run_main(int argc, char** argv);

} // namespace backlog_lab::cli
