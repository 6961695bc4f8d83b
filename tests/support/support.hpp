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

/// A throw-away nginx prefix /tmp/TAG-PID with nginx.conf: master + 2 workers in the foreground,
/// listening on 127.0.0.1:8080 and answering 200; the caller removes the directory.
std::string nginx_test_prefix(const std::string& tag);

} // namespace backlog_lab::testing
