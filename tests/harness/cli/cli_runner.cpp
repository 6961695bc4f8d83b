#include "tests/harness/cli/cli_runner.hpp"

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

std::string read_file(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path).rdbuf();
  return s.str();
}

} // namespace backlog_lab::cli
