#pragma once
// `backlog-lab export`: a Prometheus exporter of accept queues, listen drops and the un-accepted
// connections behind them (docs/exporter.md). Serves /metrics over HTTP (--listen) and/or writes
// the same text for node_exporter's textfile collector (--textfile). It only reads.
#include <sys/types.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>

#include "harness/core/asio.hpp"

namespace backlog_lab::cli {

/// Options of `backlog-lab export`.
struct export_options {
  std::string listen;               ///< --listen ADDR:PORT
  std::string textfile;             ///< --textfile PATH ("-": stdout)
  double interval_s = 0;            ///< --interval: rewrite the textfile this often (0: once)
  bool all_netns = false;           ///< --all-netns
  std::optional<pid_t> pid;         ///< --pid P
  std::string netns_path;           ///< --netns PATH
  std::size_t max_connections = 32; ///< --max-connections
  double request_timeout_s = 5;     ///< --request-timeout
  double scrape_timeout_s = 10;     ///< --scrape-timeout
};

/// Parses --listen's ADDR:PORT ("127.0.0.1:9816", "[::1]:9816", ":9816" = every IPv4
/// address); throws input_error naming the flag and the expected form.
tcp::endpoint parse_listen_address(const std::string& text);

/// Writes `text` to `path` atomically (a temporary file in the same directory, then rename), so
/// node_exporter never reads half a file; "-" writes to stdout. Throws lab_error.
void write_textfile(const std::string& path, const std::string& text);

/// Adds the `export` subcommand to `app`; `action` is set to run it when it is chosen.
void setup_export(CLI::App& app, std::function<int()>& action);

/// Runs the exporter until SIGINT/SIGTERM (or, textfile only without --interval, once). Returns
/// the exit code: 0, or 2 when the target or the address cannot be used (docs/exit-codes.md).
int run_export(const export_options& o);

} // namespace backlog_lab::cli
