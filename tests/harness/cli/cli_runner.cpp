#include "tests/harness/cli/cli_runner.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

#include "harness/cli/app.hpp"

namespace backlog_lab::cli {

outcome run(std::vector<std::string> args) {
  args.insert(args.begin(), "backlog-lab");
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int code = run_main(static_cast<int>(argv.size()), argv.data());
  std::string out = ::testing::internal::GetCapturedStdout();
  std::string err = ::testing::internal::GetCapturedStderr();
  return {code, out, err};
}

lab::child_process spawn_binary(std::vector<std::string> argv, const std::string& out_path,
                                const std::string& err_path) {
  return lab::child_process::spawn(nullptr, [argv, out_path, err_path]() mutable -> int {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) return 127;
    ::dup2(out, 1);
    if (err_path == out_path) {
      ::dup2(out, 2);
    } else if (!err_path.empty()) {
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err < 0) return 127;
      ::dup2(err, 2);
    }
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    return 127;
  });
}

const std::filesystem::path& scratch_dir() {
  // Removed by the static's destructor at exit; forked children leave with _exit, so only the
  // test process itself removes it.
  struct directory {
    std::filesystem::path path = std::filesystem::path(::testing::TempDir()) /
                                 ("backlog-lab-cli-test-" + std::to_string(::getpid()));
    directory() { std::filesystem::create_directories(path); }
    ~directory() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const directory d;
  return d.path;
}

std::string read_file(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path).rdbuf();
  return s.str();
}

std::string write_file(const std::string& name, const std::string& text) {
  std::string path = (scratch_dir() / name).string();
  std::ofstream(path) << text;
  return path;
}

} // namespace backlog_lab::cli
