#include "tests/support/nginx.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace backlog_lab::testing {

std::string nginx_test_prefix(const std::string& tag, const nginx_options& o) {
  auto dir = std::filesystem::temp_directory_path() / (tag + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "nginx.conf")
      << "daemon off; master_process on; worker_processes " << o.workers << ";\n"
      << "pid nginx.pid; error_log stderr notice;\n"
      << "events { worker_connections " << o.worker_connections << "; }\n"
      << "http { log_format peer '$remote_addr';\n"
      << "  access_log " << (o.peer_log.empty() ? "off" : o.peer_log + " peer") << ";\n"
      << "  client_body_temp_path body; proxy_temp_path proxy;\n"
      << "  server { listen " << o.listen << o.listen_params << "; return 200 ok; } }\n";
  return dir.string();
}

} // namespace backlog_lab::testing
