#include "tests/support/support.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "harness/lab/process.hpp"

namespace backlog_lab::testing {

bool lab_available() {
  static const bool available = [] {
    try {
      lab::netns::create("probe");
      return true;
    } catch (...) {
      return false;
    }
  }();
  return available;
}

std::string run_ok(const lab::netns& ns, const std::vector<std::string>& argv) {
  auto result = lab::run_command(&ns, argv);
  std::string cmd;
  for (const auto& a : argv)
    cmd += a + " ";
  EXPECT_EQ(result.exit_status, 0) << cmd << "\n" << result.err;
  return result.out;
}

std::string nginx_test_prefix(const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path() / (tag + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "nginx.conf") << "daemon off; master_process on; worker_processes 2;\n"
                                       "pid nginx.pid; error_log stderr notice;\n"
                                       "events { worker_connections 64; }\n"
                                       "http { access_log off; client_body_temp_path body;\n"
                                       "  proxy_temp_path proxy;\n"
                                       "  server { listen 127.0.0.1:8080; return 200 ok; } }\n";
  return dir.string();
}

} // namespace backlog_lab::testing
