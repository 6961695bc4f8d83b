#pragma once
// `backlog-lab observe`: the socket census of a namespace like `ss -tan`, per-listener accept
// queue summaries, counters, JSON (docs/observe-json.md), and `--demo`.
#include <sys/types.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

namespace backlog_lab::cli {

/// Options of `backlog-lab observe`.
struct observe_options {
  std::optional<pid_t> pid;    ///< --pid P: the network namespace of process P
  std::string netns_path;      ///< --netns PATH: a namespace file (/proc/P/ns/net, /run/netns/N)
  bool json = false;           ///< --json: machine-readable output
  bool extended = false;       ///< -e: uid, inode and shutdown columns, as ss -e
  bool counters = false;       ///< --counters: the Tcp/TcpExt counters too
  bool listeners_only = false; ///< --listeners: summaries only, no socket list
  bool demo = false;           ///< --demo: build a lab and fill an accept queue
};

/// Adds observe's options to `sub`, bound to `o` (setup_observe uses it; tests parse with it).
void add_observe_options(CLI::App& sub, observe_options& o);

/// Adds the `observe` subcommand to `app`; when it is the one parsed, `action` is set to run it
/// and return the exit code. `action` must outlive the parse.
void setup_observe(CLI::App& app, std::function<int()>& action);

/// Runs observe with `o`, writing to `out`. Returns 0, or 1 when a --demo check failed; throws
/// lab_error when the namespace cannot be read or the demo's lab cannot be built.
int run_observe(const observe_options& o, std::ostream& out);
/// Same, writing to stdout.
int run_observe(const observe_options& o);

} // namespace backlog_lab::cli
