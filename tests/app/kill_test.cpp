// `backlog-lab run` killed with SIGKILL (or SIGINT) mid-run leaves nothing: no namespace, link,
// rule or process.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/leftovers.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::testing {
namespace {

// Starts `backlog-lab ARGS...` with its output discarded.
pid_t start_command(const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<char*> argv{const_cast<char*>(BACKLOG_LAB_BINARY)};
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(BACKLOG_LAB_BINARY, argv.data());
    ::_exit(127);
  }
  return pid;
}

pid_t start_run(const std::string& scenario) {
  return start_command({"run", scenario});
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

// The network namespaces a process is in or holds (its tasks' ns/net links and its fds).
std::set<unsigned long> namespaces_of(pid_t pid) {
  std::set<unsigned long> out = namespaces_held_by(pid);
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    char target[128] = {};
    std::string link = dir + "/" + e->d_name + "/ns/net";
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n > 5 && std::string(target, 5) == "net:[") out.insert(std::stoul(std::string(target + 5)));
  }
  ::closedir(d);
  return out;
}

// A process and every descendant, with start times (so a reused pid is not mistaken for it).
std::vector<std::pair<pid_t, unsigned long long>> tree_of(pid_t root) {
  std::vector<std::pair<pid_t, unsigned long long>> out{{root, process_start_ticks(root)}};
  for (size_t i = 0; i < out.size(); ++i)
    for (pid_t c : children_of(out[i].first))
      out.emplace_back(c, process_start_ticks(c));
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

// Every process below `pid`, with its command name (/proc/PID/comm).
std::vector<std::pair<pid_t, std::string>> descendants_by_name(pid_t pid) {
  std::vector<std::pair<pid_t, std::string>> out;
  std::vector<pid_t> frontier{pid};
  while (!frontier.empty()) {
    pid_t p = frontier.back();
    frontier.pop_back();
    for (pid_t c : children_of(p)) {
      std::ifstream f("/proc/" + std::to_string(c) + "/comm");
      std::string comm;
      std::getline(f, comm);
      out.emplace_back(c, comm);
      frontier.push_back(c);
    }
  }
  return out;
}

void sigkill_with_programs(const std::string& scenario, const std::string& program) {
  pid_t pid = start_run(scenario);
  ASSERT_GT(pid, 0);
  std::vector<std::pair<pid_t, std::string>> tree;
  auto count = [&] {
    return std::count_if(tree.begin(), tree.end(),
                         [&](const auto& p) { return p.second == program; });
  };
  // The master and its workers (nginx: 1 + 2; haproxy -W: master + 1 worker) are up.
  ASSERT_TRUE(eventually(
      [&] {
        tree = descendants_by_name(pid);
        return count() >= 2;
      },
      std::chrono::seconds(20)))
      << "the run never started " << program;
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  tree = descendants_by_name(pid);
  std::vector<unsigned long long> ticks;
  for (const auto& [p, comm] : tree)
    ticks.push_back(process_start_ticks(p));
  std::string dir_prefix = "backlog-lab." + std::to_string(pid) + ".";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  for (size_t i = 0; i < tree.size(); ++i)
    EXPECT_TRUE(eventually([&] { return !process_running(tree[i].first, ticks[i]); },
                           std::chrono::seconds(5)))
        << tree[i].second << " " << tree[i].first << " outlived backlog-lab";
  auto dirs_left = [&] {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/tmp"))
      n += e.path().filename().string().rfind(dir_prefix, 0) == 0;
    return n;
  };
  EXPECT_TRUE(eventually([&] { return dirs_left() == 0; }, std::chrono::seconds(5)))
      << "the programs' directories are removed";
}

TEST(app, sigkill_mid_run_leaves_no_nginx_process) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (::access("/usr/sbin/nginx", X_OK) != 0) GTEST_SKIP() << "nginx not installed";
  sigkill_with_programs("incident-2018-03-nginx-front", "nginx");
}

TEST(app, sigkill_mid_run_leaves_no_haproxy_process) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (::access("/usr/sbin/haproxy", X_OK) != 0) GTEST_SKIP() << "haproxy not installed";
  sigkill_with_programs("haproxy-frozen-backend", "haproxy");
}

TEST(app, sigterm_during_observe_demo_cleans_up_and_exits_130) {
  BACKLOG_LAB_REQUIRE_LAB();
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig);
    pid_t pid = start_command({"observe", "--demo"});
    ASSERT_GT(pid, 0);
    struct stat own {};
    ASSERT_EQ(::stat("/proc/self/ns/net", &own), 0);
    std::set<unsigned long> held;
    ASSERT_TRUE(eventually(
        [&] {
          // Until it execs, the child holds what this test process holds; and the host's.
          held = namespaces_held_by(pid);
          held.erase(own.st_ino);
          for (unsigned long ino : namespaces_held_by(::getpid()))
            held.erase(ino);
          return !held.empty();
        },
        std::chrono::seconds(10)))
        << "the demo never built its namespace";
    ASSERT_EQ(::kill(pid, sig), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 130);
    EXPECT_TRUE(eventually([&] { return holders_of(held).empty(); }, std::chrono::seconds(10)))
        << lines(holders_of(held));
  }
}

TEST(app, an_empty_scenario_name_is_bad_input_not_the_default_run) {
  pid_t pid = start_command({"run", ""});
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

TEST(app, sigint_mid_run_tears_down_and_exits_130) {
  BACKLOG_LAB_REQUIRE_LAB();
  kill_mid_run_and_check(SIGINT);
}

// SIGKILL at random moments, lab construction included, of each command that builds a lab. The
// process is stopped first so that the snapshot of what it holds (namespaces, descendants) is
// complete when the kill lands; everything in it must be gone afterwards.
TEST(app, sigkill_at_random_moments_leaves_nothing_behind) {
  BACKLOG_LAB_REQUIRE_LAB();
  const std::vector<std::vector<std::string>> commands = {
      {"run", "incident-2018-03"},
      {"sweep", "tuning-accept-queue", "--set", "node:net.core.somaxconn=16,128"},
      {"observe", "--demo"},
  };
  std::random_device device;
  const unsigned seed = device();
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> moment_ms(0, 1500);
  size_t namespaces_seen = 0; // the snapshots must have caught labs, or the test checks nothing
  for (int round = 0; round < 4; ++round) {
    for (const auto& command : commands) {
      const int after_ms = moment_ms(random);
      SCOPED_TRACE("seed " + std::to_string(seed) + ": " + command[0] + " killed after " +
                   std::to_string(after_ms) + " ms");
      pid_t pid = start_command(command);
      ASSERT_GT(pid, 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
      ASSERT_EQ(::kill(pid, SIGSTOP), 0);
      auto tree = tree_of(pid);
      std::set<unsigned long> held;
      for (const auto& [p, ticks] : tree) {
        (void)ticks;
        for (unsigned long ino : namespaces_of(p))
          held.insert(ino);
      }
      struct stat own {};
      ASSERT_EQ(::stat("/proc/self/ns/net", &own), 0);
      held.erase(own.st_ino); // the namespace this test runs in stays, of course
      namespaces_seen += held.size();
      ASSERT_EQ(::kill(pid, SIGKILL), 0);
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      EXPECT_TRUE(eventually([&] { return holders_of(held).empty(); }, std::chrono::seconds(10)))
          << lines(holders_of(held));
      for (const auto& [p, ticks] : tree)
        EXPECT_TRUE(eventually([&] { return !process_running(p, ticks); }))
            << "process " << p << " outlived the kill";
      for (const auto& link : current_links())
        EXPECT_NE(link.rfind("bl-", 0), 0u) << link;
    }
  }
  EXPECT_GT(namespaces_seen, 12u) << "no kill caught a lab while it was up";
}

} // namespace
} // namespace backlog_lab::testing
