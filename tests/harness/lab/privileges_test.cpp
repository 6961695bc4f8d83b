// A non-root user gets a lab through a user namespace where the kernel allows it, and a clear
// error where it does not. The test drops a forked child to nobody (65534) to play that user.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/sysctl.hpp"
#include "harness/lab/topology.hpp"
#include "tests/harness/lab/tcp_util.hpp"

namespace backlog_lab::lab {
namespace {

using namespace std::chrono_literals;
constexpr uid_t nobody = 65534;

bool drop_to_nobody() {
  return ::setgroups(0, nullptr) == 0 && ::setresgid(nobody, nobody, nobody) == 0 &&
         ::setresuid(nobody, nobody, nobody) == 0 && ::geteuid() == nobody;
}

// Writes `text` to a /proc file of this process; false on failure.
bool write_proc(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// What the user does: get privileges, build a small lab, use it. Exit code 0 = all worked,
// 3 = lab_error (its text goes to `message_fd`), others = something else went wrong.
int build_lab_as_user(int message_fd) {
  auto say = [&](const std::string& text) {
    if (::write(message_fd, text.data(), text.size()) < 0) return;
  };
  try {
    ensure_privileges();
    topology t = topology::build_nodeport({1,
                                           2,
                                           {{"node", {{"net.core.somaxconn", "128"}}},
                                            {"pods", {{"net.ipv4.tcp_syncookies", "0"}}}}});
    if (read_sysctl(t.node(), "net.core.somaxconn") != "128") return 5;
    testing::unique_fd listener = testing::tcp_listen(t.pod(1), "0.0.0.0", 8080);
    testing::unique_fd c = testing::tcp_connect_start(t.clients(), "", t.pod_address(1), 8080);
    if (testing::tcp_connect_finish(c, 5s) != 0) return 6;
    return 0;
  } catch (const lab_error& e) {
    say(e.what());
    return 3;
  } catch (const std::exception& e) {
    say(e.what());
    return 4;
  }
}

std::string read_message(int fd) {
  std::string text;
  char buf[1024];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 0) == 1) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

TEST(privileges, unprivileged_user_gets_a_lab_through_a_user_namespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to play an unprivileged user";
  // Does this kernel let nobody create a user namespace at all?
  child_process probe = child_process::spawn(
      nullptr, [] { return drop_to_nobody() && ::unshare(CLONE_NEWUSER) == 0 ? 0 : 1; });
  bool kernel_allows = probe.wait_for(10s) == 0;

  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  child_process user = child_process::spawn(nullptr, [&] {
    if (!drop_to_nobody()) return 10;
    return build_lab_as_user(pipe_fds[1]);
  });
  int code = user.wait_for(30s);
  ::close(pipe_fds[1]);
  std::string message = read_message(pipe_fds[0]);
  ::close(pipe_fds[0]);
  if (kernel_allows) {
    EXPECT_EQ(code, 0) << message;
  } else {
    EXPECT_EQ(code, 3) << message;
    EXPECT_NE(message.find("user namespace"), std::string::npos) << message;
  }
}

TEST(privileges, without_user_namespaces_the_error_says_what_is_needed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to forbid user namespaces in a sandbox";
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  child_process user = child_process::spawn(nullptr, [&] {
    // A user namespace of our own where we appear as nobody (65534) and further user namespaces
    // are forbidden: user.max_user_namespaces=0 applies to it and below. We still hold its
    // capabilities, but ensure_privileges goes by the user id, as for a real user.
    if (::unshare(CLONE_NEWUSER) != 0) return 11;
    if (!write_proc("/proc/self/uid_map", "65534 0 1") ||
        !write_proc("/proc/self/setgroups", "deny") ||
        !write_proc("/proc/self/gid_map", "65534 0 1"))
      return 12;
    if (!write_proc("/proc/sys/user/max_user_namespaces", "0")) return 13;
    if (::geteuid() != nobody) return 14;
    return build_lab_as_user(pipe_fds[1]);
  });
  int code = user.wait_for(30s);
  ::close(pipe_fds[1]);
  std::string message = read_message(pipe_fds[0]);
  ::close(pipe_fds[0]);
  ASSERT_EQ(code, 3) << message;
  EXPECT_NE(message.find("not root"), std::string::npos) << message;
  EXPECT_NE(message.find("user.max_user_namespaces"), std::string::npos) << message;
}

} // namespace
} // namespace backlog_lab::lab
