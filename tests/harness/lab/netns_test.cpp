#include "harness/lab/netns.hpp"

#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/sysctl.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::lab {
namespace {

TEST(netns, fresh_namespace_has_kernel_defaults_and_its_own_sysctls) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns a = netns::create("a");
  netns b = netns::create("b");
  EXPECT_NE(a.inode(), b.inode());
  EXPECT_NE(a.inode(), netns::current().inode());
  write_sysctl(a, "net.core.somaxconn", "128");
  EXPECT_EQ(read_sysctl(a, "net.core.somaxconn"), "128");
  EXPECT_EQ(read_sysctl(b, "net.core.somaxconn"), "4096");
  // The kernel's own view from inside the namespace agrees.
  EXPECT_EQ(testing::run_ok(a, {"sysctl", "-n", "net.core.somaxconn"}), "128\n");
}

TEST(netns, loopback_is_up) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns a = netns::create("a");
  auto out = testing::run_ok(a, {"ip", "-o", "link", "show", "lo"});
  EXPECT_NE(out.find("UP"), std::string::npos) << out;
}

TEST(sysctl, missing_key_is_a_clear_error) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns a = netns::create("a");
  try {
    write_sysctl(a, "net.ipv4.tcp_no_such_key", "1");
    FAIL() << "expected lab_error";
  } catch (const lab_error& e) {
    EXPECT_NE(std::string(e.what()).find("net.ipv4.tcp_no_such_key"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("no such key"), std::string::npos);
  }
  EXPECT_THROW(write_sysctl(a, "kernel.pid_max", "1"), input_error);
  EXPECT_THROW(write_sysctl(a, "net.core.somaxconn", "banana"), lab_error);
}

TEST(process, runs_in_namespace_and_reports_exit_status) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns a = netns::create("a");
  auto r = run_command(&a, {"sh", "-c", "readlink /proc/self/ns/net; exit 3"});
  EXPECT_EQ(r.exit_status, 3);
  EXPECT_EQ(r.out, "net:[" + std::to_string(a.inode()) + "]\n");
  auto slow = run_command(nullptr, {"sleep", "5"}, {}, std::chrono::milliseconds(100));
  EXPECT_TRUE(slow.timed_out);
  EXPECT_THROW(run_command(nullptr, {"no-such-program-xyz"}), lab_error);
}

} // namespace
} // namespace backlog_lab::lab
