// The program's output going away: `backlog-lab observe --json | head -c 100`. With SIGPIPE
// ignored (inherited from the parent) the failed write ends the program quietly with exit 141
// (exit_code::output_closed, docs/exit-codes.md); with SIGPIPE at its default the signal ends it,
// which a shell shows as 141 too. Either way nothing on stderr.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <gtest/gtest.h>
#include <string>
#include <thread>
#include <vector>

#include "harness/lab/netns.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::testing {
namespace {

// A namespace with 1 + 2 * `pairs` sockets: a listener and its un-accepted children's pairs, so
// `observe --json` prints far more than a pipe holds (~450 bytes per socket, pipes hold 64 KiB).
struct crowded_namespace {
  lab::netns ns = lab::netns::create("output-test");
  std::vector<int> fds;
  explicit crowded_namespace(int pairs) {
    lab::netns_scope in(ns);
    int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fds.push_back(l);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    EXPECT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&sa), len), 0);
    EXPECT_EQ(::listen(l, pairs + 16), 0);
    ::getsockname(l, reinterpret_cast<sockaddr*>(&sa), &len);
    for (int i = 0; i < pairs; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      fds.push_back(c);
      EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&sa), len), 0);
    }
  }
  ~crowded_namespace() {
    for (int f : fds)
      ::close(f);
  }
};

struct outcome {
  int status = 0;
  std::string err;
  std::string first_bytes;
};

// Runs `observe --json` on `ns` with stdout a pipe whose reader reads 100 bytes and closes it.
outcome observe_into_a_closed_pipe(const lab::netns& ns, bool ignore_sigpipe) {
  int out[2], err[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
  const std::string path = ns.proc_path();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGPIPE, ignore_sigpipe ? SIG_IGN : SIG_DFL); // SIG_IGN survives exec
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execl(BACKLOG_LAB_BINARY, BACKLOG_LAB_BINARY, "observe", "--json", "--netns", path.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  outcome o;
  char buf[100];
  std::size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = ::read(out[0], buf + got, sizeof buf - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  o.first_bytes.assign(buf, got);
  ::close(out[0]); // what `head -c 100` does
  // Hang guard only: the program is expected to end at its next write.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (::waitpid(pid, &o.status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &o.status, 0);
      ADD_FAILURE() << "observe --json did not end after its reader went away";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;)
    o.err.append(buf, static_cast<std::size_t>(n));
  ::close(err[0]);
  return o;
}

TEST(app_output, observe_json_into_a_closed_pipe_with_sigpipe_ignored_exits_141_quietly) {
  BACKLOG_LAB_REQUIRE_LAB();
  crowded_namespace crowd(1000);
  outcome o = observe_into_a_closed_pipe(crowd.ns, true);
  EXPECT_EQ(o.first_bytes.substr(0, 13), "{\n  \"census\":") << o.first_bytes;
  ASSERT_TRUE(WIFEXITED(o.status)) << "status " << o.status;
  EXPECT_EQ(WEXITSTATUS(o.status), 141);
  EXPECT_EQ(o.err, "");
}

TEST(app_output, observe_json_into_a_closed_pipe_with_sigpipe_default_ends_by_sigpipe) {
  BACKLOG_LAB_REQUIRE_LAB();
  crowded_namespace crowd(1000);
  outcome o = observe_into_a_closed_pipe(crowd.ns, false);
  EXPECT_EQ(o.first_bytes.size(), 100u);
  // The program leaves SIGPIPE's disposition alone (issue 14): the signal ends it.
  ASSERT_TRUE(WIFSIGNALED(o.status)) << "status " << o.status;
  EXPECT_EQ(WTERMSIG(o.status), SIGPIPE);
  EXPECT_EQ(o.err, "");
}

} // namespace
} // namespace backlog_lab::testing
