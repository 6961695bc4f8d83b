#include "tests/support/support.hpp"

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

} // namespace backlog_lab::testing
