#pragma once
// `backlog-lab doctor`: which listeners of a namespace (or of every one) have a queue or drop,
// what their queue holds, who owns them and a verdict (docs/doctor.md).
#include <sys/types.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

namespace backlog_lab::cli {

/// Options of `backlog-lab doctor`.
struct doctor_options {
  std::optional<pid_t> pid; ///< --pid P: the network namespace of process P
  std::string netns_path;   ///< --netns PATH: a namespace file (/proc/P/ns/net, /run/netns/N)
  bool all_netns = false;   ///< --all-netns: every namespace with a process in it
  double interval_s = 2;    ///< --interval: seconds between the two looks
  bool json = false;        ///< --json: the versioned JSON document instead of text
  bool peek = false;        ///< --peek: show the bytes of queued connections (needs --take)
  std::size_t take = 0;     ///< --take N: consent to take up to N connections per listener
  bool drain = false;       ///< --drain: take every un-accepted child of never-accepts listeners
  std::uint16_t port = 0;   ///< --port P: peek/drain only listeners on port P
  bool watch = false;       ///< --watch: a terminal view redrawn after every pair of looks
};

/// Adds doctor's options to `sub`, bound to `o` (setup_doctor uses it; tests parse with it).
void add_doctor_options(CLI::App& sub, doctor_options& o);

/// Adds the `doctor` subcommand to `app`; when parsed, `action` is set to run it.
void setup_doctor(CLI::App& app, std::function<int()>& action);

/// Runs doctor with `o`, writing to `out`: 0 when no listener is in trouble, 1 when one is;
/// with --watch, until SIGINT/SIGTERM, then 0.
/// Throws lab_error when a --pid/--netns target cannot be read (the caller exits 2).
int run_doctor(const doctor_options& o, std::ostream& out);

} // namespace backlog_lab::cli
