// `backlog-lab run` of a lab too big for the process's descriptor limit: refused before anything
// is built. The binary runs under prlimit(1) (a lower RLIMIT_NOFILE for it alone) and strace(1),
// which counts the network namespaces it creates (they are anonymous: `ip netns` cannot see them).
#include <gtest/gtest.h>
#include <sstream>
#include <string>

#include "harness/lab/process.hpp"
#include "tests/harness/cli/cli_runner.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::cli {
namespace {

/// `pods` pods behind one Service, one client group, half a second.
std::string lab_with_pods(int pods) {
  std::string backends, endpoints;
  for (int i = 0; i < pods; ++i) {
    backends += std::string(i ? "," : "") + R"({"name": "p)" + std::to_string(i) + R"("})";
    endpoints += std::string(i ? "," : "") + R"("p)" + std::to_string(i) + R"(")";
  }
  return R"({"name": "pods", "duration_ms": 500, "backends": [)" + backends +
         R"(], "proxy": {"mode": "iptables", "preset": "1.24"},
    "services": [{"name": "ns/s:http", "node_port": 30080, "endpoints": [)" +
         endpoints + R"(]}],
    "clients": [{"name": "c", "target_service": "ns/s:http", "rate_per_s": 10}]})";
}

struct limited_run {
  lab::command_result result;
  int namespaces_created = 0; ///< unshare(CLONE_NEWNET) calls that succeeded
};

/// Runs the binary on `scenario` with at most `nofile` descriptors.
limited_run run_limited(const std::string& scenario, int nofile) {
  std::string trace = (scratch_dir() / "trace").string();
  limited_run r;
  // LeakSanitizer cannot run under ptrace (it fails the process at exit): in a
  // -DBACKLOG_LAB_SANITIZE=ON build the traced binary runs without it; other builds ignore this.
  r.result = lab::run_command(nullptr,
                              {"env", "ASAN_OPTIONS=detect_leaks=0", "strace", "-f", "-qq", "-e",
                               "trace=unshare", "-o", trace, "prlimit",
                               "--nofile=" + std::to_string(nofile), BACKLOG_LAB_BINARY, "run",
                               scenario, "-q"},
                              "", std::chrono::seconds(120));
  // One line per call: "PID unshare(CLONE_NEWNET)     = 0".
  std::istringstream calls(read_file(trace));
  for (std::string line; std::getline(calls, line);)
    if (line.find("unshare(CLONE_NEWNET)") != std::string::npos && line.ends_with("= 0"))
      ++r.namespaces_created;
  return r;
}

TEST(run_limits, a_lab_beyond_the_descriptor_limit_is_refused_before_anything_is_built) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!lab::have_program("strace") || !lab::have_program("prlimit"))
    GTEST_SKIP() << "strace and prlimit (util-linux) are needed";
  // 300 pods cost about 1,500 descriptors (5 each, docs/scenario-format.md): refused at 1,000.
  std::string big = write_file("big.json", lab_with_pods(300));
  auto refused = run_limited(big, 1000);
  EXPECT_EQ(refused.result.exit_status, 2) << refused.result.out << refused.result.err;
  const std::string& err = refused.result.err;
  EXPECT_NE(err.find(big), std::string::npos) << err;
  EXPECT_NE(err.find("/backends: 300 pods (1,500)"), std::string::npos) << err;
  EXPECT_NE(err.find("ulimit"), std::string::npos) << err;
  EXPECT_EQ(err.find("the lab could not be built"), std::string::npos)
      << "refused by the check, not by EMFILE half-way: " << err;
  EXPECT_EQ(refused.namespaces_created, 0) << "a namespace was created before the refusal";

  // Within the same limit a small lab runs, and the trace sees its namespaces: the count above
  // is not zero for want of seeing them.
  auto small = run_limited(write_file("small.json", lab_with_pods(3)), 1000);
  EXPECT_EQ(small.result.exit_status, 0) << small.result.out << small.result.err;
  EXPECT_GE(small.namespaces_created, 5) << "clients, node and 3 pods";
}

} // namespace
} // namespace backlog_lab::cli
