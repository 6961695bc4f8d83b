// `backlog-lab run` killed with SIGKILL (or SIGINT) mid-run leaves nothing: no namespace, link,
// rule or process.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <set>
#include <string>
#include <thread>

#include "tests/support/leftovers.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::testing {
namespace {

pid_t start_run(const std::string& scenario) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(BACKLOG_LAB_BINARY, BACKLOG_LAB_BINARY, "run", scenario.c_str(), nullptr);
    ::_exit(127);
  }
  return pid;
}

// The network namespaces process `pid` holds through its fds (net:[INODE]).
std::set<unsigned long> namespaces_held_by(pid_t pid) {
  std::set<unsigned long> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    char target[128] = {};
    std::string link = dir + "/" + e->d_name;
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n > 5 && std::string(target, 5) == "net:[") out.insert(std::stoul(std::string(target + 5)));
  }
  ::closedir(d);
  return out;
}

// Descendants of `pid` (iptables-restore, ss, ...), by scanning parent links.
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  while (dirent* e = ::readdir(d)) {
    pid_t p = std::atoi(e->d_name);
    if (p <= 0) continue;
    std::string stat_path = "/proc/" + std::to_string(p) + "/stat";
    FILE* f = ::fopen(stat_path.c_str(), "r");
    if (!f) continue;
    int self = 0, parent = 0;
    char comm[256];
    char state;
    if (std::fscanf(f, "%d %255s %c %d", &self, comm, &state, &parent) == 4 && parent == pid)
      out.push_back(p);
    std::fclose(f);
  }
  ::closedir(d);
  return out;
}

void kill_mid_run_and_check(int sig) {
  pid_t pid = start_run("incident-2018-03");
  ASSERT_GT(pid, 0);
  // Wait until the lab is up: the topology holds at least clients, node and pod namespaces.
  std::set<unsigned long> held;
  ASSERT_TRUE(eventually(
      [&] {
        held = namespaces_held_by(pid);
        return held.size() >= 10;
      },
      std::chrono::seconds(20)))
      << "the run never built its lab";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500)); // traffic, queues, rules
  held = namespaces_held_by(pid);
  auto children = children_of(pid);
  std::vector<unsigned long long> child_ticks;
  for (pid_t c : children)
    child_ticks.push_back(process_start_ticks(c));
  ASSERT_EQ(::kill(pid, sig), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  if (sig == SIGKILL) {
    EXPECT_TRUE(WIFSIGNALED(status));
  } else {
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 130) << "interrupted runs exit 130";
  }
  EXPECT_TRUE(eventually([&] { return holders_of(held).empty(); }, std::chrono::seconds(10)))
      << lines(holders_of(held));
  for (size_t i = 0; i < children.size(); ++i)
    EXPECT_FALSE(process_running(children[i], child_ticks[i])) << "child " << children[i];
  for (const auto& link : current_links())
    EXPECT_NE(link.rfind("bl-", 0), 0u) << link;
  EXPECT_TRUE(named_namespaces().empty()) << lines(named_namespaces());
}

TEST(app, sigkill_mid_run_leaves_nothing_behind) {
  BACKLOG_LAB_REQUIRE_LAB();
  kill_mid_run_and_check(SIGKILL);
}

TEST(app, sigint_mid_run_tears_down_and_exits_130) {
  BACKLOG_LAB_REQUIRE_LAB();
  kill_mid_run_and_check(SIGINT);
}

} // namespace
} // namespace backlog_lab::testing
