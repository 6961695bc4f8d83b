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
      << "http { access_log off; client_body_temp_path body;\n"
      << "  proxy_temp_path proxy;\n"
      << "  server { listen 127.0.0.1:8080" << o.listen_params << "; return 200 ok; } }\n";
  return dir.string();
}

} // namespace backlog_lab::testing
