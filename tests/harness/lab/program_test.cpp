// A user's program as one process tree: nginx (a master that forks workers) frozen, resumed and
// killed whole; a tree outliving nothing when its owner is SIGKILLed; clear start failures.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/program.hpp"
#include "tests/harness/lab/tcp_util.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/nginx.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::lab {
namespace {

using namespace std::chrono_literals;

char state_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), {});
  auto paren = all.rfind(')');
  return paren == std::string::npos || paren + 2 >= all.size() ? 0 : all[paren + 2];
}

std::string nginx_prefix() {
  return testing::nginx_test_prefix("bl-program-test");
}

program start_nginx(const netns& ns, const std::string& prefix) {
  program_spec spec{"nginx", {"nginx", "-p", prefix, "-c", prefix + "/nginx.conf"}, {}, {}, {}};
  return program::start(&ns, spec);
}

TEST(program, nginx_tree_freezes_resumes_and_dies_whole) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!have_program("nginx")) GTEST_SKIP() << "nginx not installed (scripts/setup installs it)";
  netns ns = netns::create("prog");
  auto prefix = nginx_prefix();
  program p = start_nginx(ns, prefix);
  ASSERT_EQ(wait_until_accepting(p, ns, "127.0.0.1", 8080, 5s), readiness::ready)
      << p.last_lines(true);
  std::vector<pid_t> tree;
  ASSERT_TRUE(testing::eventually([&] { return (tree = p.processes()).size() == 3; }))
      << "master + 2 workers; stderr: " << p.last_lines(true);
  EXPECT_EQ(tree.front(), p.main_pid());

  p.freeze();
  // SIGSTOP takes effect when the process next runs: at once on an idle machine, later under load.
  for (pid_t pid : tree)
    EXPECT_TRUE(testing::eventually([&] { return state_of(pid) == 'T'; }, 2s))
        << pid << " " << state_of(pid);
  // The kernel still completes handshakes for a frozen nginx: it just never answers.
  auto c = testing::tcp_connect_start(ns, "", "127.0.0.1", 8080);
  EXPECT_EQ(testing::tcp_connect_finish(c, 2s), 0);
  ASSERT_EQ(::write(c.get(), "GET / HTTP/1.0\r\n\r\n", 18), 18);
  EXPECT_EQ(testing::read_some(c, 300ms), "");

  p.resume();
  for (pid_t pid : tree)
    EXPECT_TRUE(testing::eventually([&] { return state_of(pid) != 'T'; }, 2s)) << pid;
  EXPECT_NE(testing::read_some(c, 3s).find("200"), std::string::npos);

  p.kill();
  for (pid_t pid : tree)
    EXPECT_TRUE(testing::eventually([&] { return !testing::process_running(pid); }, 2s)) << pid;
  EXPECT_FALSE(p.running());
  std::filesystem::remove_all(prefix);
}

TEST(program, tree_dies_when_its_owner_is_sigkilled) {
  BACKLOG_LAB_REQUIRE_LAB();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  auto dir = std::filesystem::temp_directory_path() / ("bl-owner-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "sub");
  pid_t owner = ::fork();
  if (owner == 0) {
    ::close(fds[0]);
    // A subshell starts a sleep and exits: the sleep is orphaned at once (a daemon's double
    // fork), and only the keeper's subreaper role keeps it in the tree.
    program p = program::start(
        nullptr, {"tree", {"sh", "-c", "(sleep 300 &); exec sleep 301"}, {}, {}, dir.string()});
    // Until both are `sleep`: before that the tree holds the shell and its passing subshell.
    auto both_sleep = [](const std::vector<pid_t>& pids) {
      if (pids.size() != 2) return false;
      for (pid_t pid : pids) {
        std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
        std::string name;
        if (!std::getline(comm, name) || name != "sleep") return false;
      }
      return true;
    };
    std::vector<pid_t> tree;
    for (int i = 0; i < 300 && !both_sleep(tree = p.processes()); ++i)
      ::usleep(10000);
    for (pid_t t : tree)
      if (::write(fds[1], &t, sizeof t) != sizeof t) ::_exit(1);
    ::close(fds[1]);
    ::pause();
    ::_exit(0);
  }
  ::close(fds[1]);
  std::vector<pid_t> tree;
  pid_t t;
  while (::read(fds[0], &t, sizeof t) == sizeof t)
    tree.push_back(t);
  ::close(fds[0]);
  bool all_running = true;
  for (pid_t pid : tree)
    all_running = all_running && testing::process_running(pid);
  ::kill(owner, SIGKILL);
  ::waitpid(owner, nullptr, 0);
  EXPECT_EQ(tree.size(), 2u) << "the main sleep and the orphaned one";
  EXPECT_TRUE(all_running);
  for (pid_t pid : tree)
    EXPECT_TRUE(testing::eventually([&] { return !testing::process_running(pid); }, 5s)) << pid;
  EXPECT_TRUE(testing::eventually([&] { return !std::filesystem::exists(dir); }, 5s))
      << "the keeper removes the program's directory when its owner dies";
  std::filesystem::remove_all(dir);
}

TEST(program, missing_program_and_early_exit_are_clear) {
  BACKLOG_LAB_REQUIRE_LAB();
  try {
    program::start(nullptr, {"x", {"no-such-program-xyz", "--flag"}, {}, {}, {}});
    FAIL() << "expected lab_error";
  } catch (const lab_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-program-xyz --flag"), std::string::npos)
        << e.what();
  }
  netns ns = netns::create("early");
  program p = program::start(
      &ns,
      {"early", {"sh", "-c", "echo starting; echo 'bad config line 3' >&2; exit 3"}, {}, {}, {}});
  EXPECT_EQ(wait_until_accepting(p, ns, "127.0.0.1", 9, 5s), readiness::exited);
  EXPECT_EQ(p.exit_code(), 3);
  EXPECT_EQ(p.last_lines(true), "bad config line 3");
  EXPECT_EQ(p.last_lines(false), "starting");
}

TEST(program, start_failures_leak_no_descriptor) {
  BACKLOG_LAB_REQUIRE_LAB();
  const std::size_t before = testing::open_descriptors();
  EXPECT_THROW(program::start(nullptr, {"x", {"no-such-program-xyz"}, {}, {}, {}}), lab_error);
  EXPECT_EQ(testing::open_descriptors(), before);
  // Room for the two logs and the exec-error pipe but not the pid pipe: everything made before
  // the refusal must be closed again.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit tight = saved;
  tight.rlim_cur = testing::descriptor_limit_allowing(4);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  std::string error;
  try {
    program::start(nullptr, {"sleeper", {"sleep", "30"}, {}, {}, {}});
  } catch (const lab_error& e) {
    error = e.what();
  }
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_NE(error.find("pipe for sleeper"), std::string::npos) << error;
  EXPECT_EQ(testing::open_descriptors(), before);
}

TEST(program, env_is_added_and_readiness_times_out) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns ns = netns::create("env");
  program p = program::start(
      &ns, {"env", {"sh", "-c", "echo \"$BL_X\" >&2; exec sleep 30"}, {{"BL_X", "hello"}}, {}, {}});
  EXPECT_EQ(wait_until_accepting(p, ns, "127.0.0.1", 9, 200ms), readiness::timed_out);
  EXPECT_TRUE(testing::eventually([&] { return p.last_lines(true) == "hello"; }));
  pid_t main = p.main_pid();
  p.kill();
  EXPECT_FALSE(testing::process_running(main));
  EXPECT_EQ(p.exit_code(), 137);
}

} // namespace
} // namespace backlog_lab::lab
