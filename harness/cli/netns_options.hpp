#pragma once
// The --pid/--netns pair of the commands that read a namespace (observe, doctor): one wording,
// one set of checks.
#include <sys/types.h>

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace backlog_lab::cli {

/// The options --pid and --netns added to a subcommand.
struct netns_options {
  CLI::Option* pid = nullptr;
  CLI::Option* path = nullptr;
};

/// Adds --pid P (the network namespace of process P) and --netns PATH (a namespace file), which
/// exclude each other; `verb` starts their help text ("Observe", "Examine").
netns_options add_netns_options(CLI::App& sub, std::optional<pid_t>& pid, std::string& netns_path,
                                const std::string& verb);

} // namespace backlog_lab::cli
