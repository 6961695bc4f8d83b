#pragma once
// Bad input in tests: the message of the input_error a call throws, for asserting on its parts.
#include <gtest/gtest.h>
#include <string>

#include "harness/core/error.hpp"

namespace backlog_lab::testing {

/// The message of the input_error that `call()` throws; a test failure naming `input` (what was
/// given) and an empty string when it throws none.
template <class Call> std::string input_error_of(Call&& call, const std::string& input) {
  try {
    call();
  } catch (const input_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << input;
  return {};
}

/// A small valid scenario: a userspace proxy with one NodePort Service, one pod and one client
/// group, for tests that change it (--set overrides, sweeps).
inline constexpr const char* small_userspace_scenario = R"({
  "name": "t", "duration_ms": 1000,
  "sysctls": {"node": {"net.core.somaxconn": 128}},
  "proxy": {"mode": "userspace", "backlog": -1},
  "backends": [{"name": "pod-a"}],
  "services": [{"name": "default/web:http", "node_port": 30080, "endpoints": ["pod-a"]}],
  "clients": [{"name": "load", "target_service": "default/web:http", "rate_per_s": 10}]
})";

} // namespace backlog_lab::testing
