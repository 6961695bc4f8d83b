#pragma once
// Helpers shared by the test suites.
#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "harness/lab/netns.hpp"

namespace backlog_lab::testing {

/// Skips the test (with the reason) unless lab namespaces can be created here.
#define BACKLOG_LAB_REQUIRE_LAB()                                                                  \
  do {                                                                                             \
    if (!::backlog_lab::testing::lab_available())                                                  \
      GTEST_SKIP() << "needs root or user namespaces to build a lab";                              \
  } while (0)

/// Whether this process can create network namespaces.
bool lab_available();

/// Runs a command in `ns` and returns its stdout; fails the test if it exits non-zero.
std::string run_ok(const lab::netns& ns, const std::vector<std::string>& argv);

} // namespace backlog_lab::testing
