// Nothing of a lab outlives its process: SIGKILL, exit() with the lab still alive, or a normal
// return. A forked child builds a topology, starts a grandchild in the node namespace, opens
// sockets, reports what it made through a pipe; the test ends it and looks for leftovers.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <gtest/gtest.h>
#include <sstream>

#include "harness/lab/link.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/topology.hpp"
#include "tests/harness/lab/ip_view.hpp"
#include "tests/harness/lab/tcp_util.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::lab {
namespace {

using namespace std::chrono_literals;

enum class ending { sigkill, exit_with_lab_alive, return_normally };

std::string to_string(ending how) {
  switch (how) {
  case ending::sigkill:
    return "sigkill";
  case ending::exit_with_lab_alive:
    return "exit_with_lab_alive";
  case ending::return_normally:
    return "return_normally";
  }
  return "unknown";
}

// Names for the parameterised tests, and GoogleTest's printing of the parameter.
std::string ending_name(const ::testing::TestParamInfo<ending>& info) {
  return to_string(info.param);
}
[[maybe_unused]] void PrintTo(ending how, std::ostream* os) {
  *os << to_string(how);
}

void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// The child: builds a lab, reports it on `report_fd`, then waits for `go_fd` (or forever). Each
// of its namespaces gets a veth into `witness` (the test's): the kernel deletes a veth pair when
// either namespace is destroyed, so the witness sees the kernel really free them, not only
// that no process refers to them any more.
int run_lab(int report_fd, int go_fd, ending how, const netns& witness) {
  try {
    topology t = topology::build_nodeport({2, 3, {}});
    for (size_t k = 0; k < t.namespaces().size(); ++k)
      rtnl_socket(*t.namespaces()[k])
          .create_veth("bl-witness", witness, "bl-w" + std::to_string(k));
    child_process sleeper = child_process::spawn(&t.node(), [] {
      ::execlp("sleep", "sleep", "300", static_cast<char*>(nullptr));
      return 127;
    });
    // Sockets in several namespaces: an accepted connection, an un-accepted one, listeners.
    testing::unique_fd pod_listener = testing::tcp_listen(t.pod(0), "0.0.0.0", 8080);
    testing::unique_fd node_listener = testing::tcp_listen(t.node(), "0.0.0.0", 30080);
    testing::unique_fd to_pod =
        testing::tcp_connect_start(t.clients(), t.client_address(1), t.pod_address(0), 8080);
    testing::unique_fd to_node =
        testing::tcp_connect_start(t.clients(), "", t.node_address(), 30080);
    if (testing::tcp_connect_finish(to_pod, 5s) != 0 ||
        testing::tcp_connect_finish(to_node, 5s) != 0)
      throw std::runtime_error("connect inside the lab failed");
    testing::unique_fd accepted = testing::tcp_accept(pod_listener, 5s);

    std::ostringstream report;
    for (const netns* ns : t.namespaces())
      report << "ns " << ns->inode() << "\n";
    for (const auto& name : t.veth_names())
      report << "veth " << name << "\n";
    report << "sleep " << sleeper.pid() << "\nready\n";
    write_all(report_fd, report.str());

    char go = 0;
    if (how == ending::sigkill) {
      ::sleep(60); // the test kills us long before; bounded all the same
      return 1;
    }
    if (::read(go_fd, &go, 1) != 1) return 2;
    if (how == ending::exit_with_lab_alive) std::exit(0); // no destructor runs
    return 0;
  } catch (const std::exception& e) {
    write_all(report_fd, std::string("error ") + e.what() + "\n");
    return 3;
  }
}

struct lab_report {
  std::set<unsigned long> inodes;
  std::vector<std::string> veths;
  pid_t sleeper = -1;
  bool ready = false;
  std::string error;
};

lab_report read_report(int fd) {
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + 30s; // hang guard
  while (text.find("ready\n") == std::string::npos && text.find("error") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  lab_report r;
  std::istringstream lines(text);
  std::string key;
  while (lines >> key) {
    if (key == "ns") {
      unsigned long ino;
      lines >> ino;
      r.inodes.insert(ino);
    } else if (key == "veth") {
      std::string name;
      lines >> name;
      r.veths.push_back(name);
    } else if (key == "sleep") {
      lines >> r.sleeper;
    } else if (key == "ready") {
      r.ready = true;
    } else if (key == "error") {
      std::getline(lines, r.error);
    }
  }
  return r;
}

class lab_cleanup : public ::testing::TestWithParam<ending> {};

TEST_P(lab_cleanup, leaves_no_namespace_process_or_link) {
  BACKLOG_LAB_REQUIRE_LAB();
  int report_pipe[2], go_pipe[2];
  ASSERT_EQ(::pipe2(report_pipe, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(go_pipe, O_CLOEXEC), 0);
  ending how = GetParam();
  netns witness = netns::create("witness");
  child_process child = child_process::spawn(
      nullptr, [&] { return run_lab(report_pipe[1], go_pipe[0], how, witness); });
  ::close(report_pipe[1]);
  ::close(go_pipe[0]);
  lab_report lab = read_report(report_pipe[0]);
  ::close(report_pipe[0]);
  ASSERT_TRUE(lab.ready) << "the child did not build its lab: " << lab.error;
  ASSERT_EQ(lab.inodes.size(), 5u);
  ASSERT_EQ(lab.veths.size(), 8u);
  ASSERT_GT(lab.sleeper, 0);
  unsigned long long sleeper_start = testing::process_start_ticks(lab.sleeper);
  // While the lab lives, the checks do see it.
  EXPECT_TRUE(testing::process_running(lab.sleeper, sleeper_start));
  EXPECT_FALSE(testing::holders_of(lab.inodes).empty());

  if (how == ending::sigkill) {
    int status = child.kill_and_wait();
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  } else {
    ASSERT_EQ(::write(go_pipe[1], "g", 1), 1);
    EXPECT_EQ(child.wait_for(20s), 0);
  }
  ::close(go_pipe[1]);

  std::vector<std::string> left;
  EXPECT_TRUE(
      testing::eventually([&] { return (left = testing::holders_of(lab.inodes)).empty(); }, 30s))
      << "still held:\n"
      << testing::lines(left);
  EXPECT_TRUE(testing::eventually(
      [&] { return !testing::process_running(lab.sleeper, sleeper_start); }, 30s))
      << "the grandchild sleep " << lab.sleeper << " survived";
  for (const auto& name : testing::named_namespaces()) {
    struct stat st {};
    if (::stat(("/run/netns/" + name).c_str(), &st) == 0) {
      EXPECT_EQ(lab.inodes.count(st.st_ino), 0u) << "ip netns list shows ours as " << name;
    }
  }
  std::vector<std::string> witnessed;
  EXPECT_TRUE(testing::eventually(
      [&] {
        witnessed.clear();
        for (const auto& link : testing::ip_json(witness, {"link", "show"}))
          if (link.at("ifname").get<std::string>().rfind("bl-w", 0) == 0)
            witnessed.push_back(link.at("ifname"));
        return witnessed.empty();
      },
      // A hang guard: the kernel frees namespaces in its cleanup_net work, one batch at a time
      // and behind every other test's; under load (8 on 2 CPUs) that took over 10 s.
      60s))
      << "the kernel still has these namespaces (their veth into the witness):\n"
      << testing::lines(witnessed);
  auto links = testing::current_links();
  for (const auto& veth : lab.veths)
    EXPECT_EQ(std::count(links.begin(), links.end(), veth), 0) << veth << " in the host namespace";
}

INSTANTIATE_TEST_SUITE_P(endings, lab_cleanup,
                         ::testing::Values(ending::sigkill, ending::exit_with_lab_alive,
                                           ending::return_normally),
                         ending_name);

} // namespace
} // namespace backlog_lab::lab
