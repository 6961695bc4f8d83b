// lab::child_process and lab::run_command while the owner lives on: a destroyed or replaced child
// is killed and reaped at once (not left to PR_SET_PDEATHSIG, which acts only when the owner
// exits), and a failing command leaks no descriptor.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "tests/support/leftovers.hpp"

namespace backlog_lab::lab {
namespace {

using namespace std::chrono_literals;

// A child that would run for a minute unless killed.
child_process sleeper() {
  return child_process::spawn(nullptr, [] {
    ::sleep(60);
    return 0;
  });
}

// Whether `pid` is gone entirely: not running, and not a zombie waiting to be reaped by us.
bool reaped(pid_t pid) {
  return ::waitpid(pid, nullptr, WNOHANG) < 0 && errno == ECHILD && ::kill(pid, 0) < 0;
}

TEST(child_process, destructor_kills_and_reaps_while_the_owner_lives) {
  pid_t pid = -1;
  {
    child_process child = sleeper();
    pid = child.pid();
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(testing::process_running(pid));
  }
  EXPECT_TRUE(reaped(pid)) << "child " << pid << " outlived its child_process";
}

TEST(child_process, move_assignment_over_a_live_child_kills_the_old_one) {
  child_process a = sleeper();
  child_process b = sleeper();
  pid_t old_pid = a.pid(), new_pid = b.pid();
  a = std::move(b);
  EXPECT_TRUE(reaped(old_pid)) << "the replaced child " << old_pid << " is still there";
  EXPECT_EQ(a.pid(), new_pid);
  EXPECT_EQ(b.pid(), -1); // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_TRUE(testing::process_running(new_pid));
  a.kill_and_wait();
  EXPECT_TRUE(reaped(new_pid));
}

TEST(child_process, move_construction_keeps_one_owner) {
  child_process a = sleeper();
  pid_t pid = a.pid();
  {
    child_process b(std::move(a));
    EXPECT_EQ(b.pid(), pid);
    EXPECT_TRUE(testing::process_running(pid));
  }
  EXPECT_TRUE(reaped(pid));
}

TEST(run_command, failures_leak_no_descriptor) {
  size_t before = testing::open_descriptors();
  for (int i = 0; i < 20; ++i)
    EXPECT_THROW(run_command(nullptr, {"backlog-lab-no-such-program"}), lab_error);
  EXPECT_EQ(testing::open_descriptors(), before);
  // Room for the first pipe but not the others: the ones already made must be closed again.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit tight = saved;
  tight.rlim_cur = testing::descriptor_limit_allowing(2); // exactly one pipe fits
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  EXPECT_THROW(run_command(nullptr, {"true"}), lab_error);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_EQ(testing::open_descriptors(), before);
}

TEST(run_command, input_to_a_program_that_does_not_read_it_is_no_sigpipe) {
  // `true` exits without reading: writing its stdin fails with EPIPE, which must not kill us
  // whatever the process's SIGPIPE disposition is.
  auto old = ::signal(SIGPIPE, SIG_DFL);
  auto r = run_command(nullptr, {"true"}, std::string(1 << 20, 'x'));
  auto after = ::signal(SIGPIPE, old);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(after, SIG_DFL) << "run_command changed the process's SIGPIPE disposition";
}

} // namespace
} // namespace backlog_lab::lab
