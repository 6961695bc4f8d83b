#pragma once
// A throw-away nginx for tests that need a real multi-process server (Debian's nginx-light).
#include <string>

namespace backlog_lab::testing {

/// How the test nginx is set up.
struct nginx_options {
  int workers = 2;                ///< worker_processes (plus the master)
  int worker_connections = 64;    ///< per worker
  std::string listen_params = ""; ///< after "listen ADDRESS", e.g. " backlog=16"
  std::string listen = "127.0.0.1:8080";
  std::string peer_log = ""; ///< a file getting each request's $remote_addr; empty: no log
};

/// A throw-away nginx prefix /tmp/TAG-PID with nginx.conf: master and workers in the foreground,
/// listening on `o.listen` (127.0.0.1:8080) and answering 200; the caller removes the directory.
std::string nginx_test_prefix(const std::string& tag, const nginx_options& o = {});

} // namespace backlog_lab::testing
