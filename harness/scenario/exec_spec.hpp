#pragma once
// A user's program in a scenario role (docs/your-software.md): a backend pod, the node's proxy
// or a client. Plain data; the reader validates it and the runner starts it (lab/program.hpp).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace backlog_lab::scenario {

/// How an exec proxy applies new endpoints after its configuration was re-rendered.
struct reload_spec {
  int signal = 0;                   ///< a signal to its main process (e.g. SIGHUP for nginx), or
  std::vector<std::string> command; ///< a command run in the node's namespace (placeholders)
};

/// A program given as an argv array; every string may hold placeholders ({{name}}).
struct exec_spec {
  std::vector<std::string> argv;          ///< argv[0] looked up in PATH
  std::map<std::string, std::string> env; ///< added to backlog-lab's environment
  /// Configuration template, one string per line; rendered to {{config}} ({{dir}}/config)
  /// before the program starts and again on every set-endpoints (proxy).
  std::vector<std::string> config;
  uint32_t ready_timeout_ms = 5000; ///< the readiness port must accept within this
  reload_spec reload;               ///< proxy only
  /// A file (placeholders allowed) where the program writes, one line per request, the bytes it
  /// sent upstream (e.g. nginx's $upstream_bytes_sent); compared with the node's queued Recv-Q.
  std::string sent_bytes_log;
  /// A command run in the program's namespace at the end of the run, before it is stopped;
  /// each line "KEY VALUE" of its output becomes the metric program.NAME.KEY (haproxy's
  /// `show stat` through socat, nginx's stub_status through curl, ...).
  std::vector<std::string> metrics_command;
};

} // namespace backlog_lab::scenario
