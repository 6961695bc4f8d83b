// doctor: verdicts on crafted pairs of looks, and the whole command (through cli::run_main) on
// real listeners in lab namespaces: one that never accepts, with CLOSE-WAIT children holding
// requests as in the incident; a real nginx serving clients; --all-netns; bad targets.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "harness/core/error.hpp"
#include "harness/core/unique_fd.hpp"
#include "harness/doctor/doctor.hpp"
#include "harness/lab/netns.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/program.hpp"
#include "tests/harness/cli/cli_runner.hpp"
#include "tests/support/kernel_view.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/nginx.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::doctor {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace obs = observer;

// --- verdicts on crafted looks ------------------------------------------------------------

obs::tcp_socket child(std::uint16_t peer_port, obs::tcp_state st, std::uint32_t recv_q) {
  obs::tcp_socket s;
  s.state = st;
  s.family = AF_INET;
  s.local = {obs::ip_address::v4(127, 0, 0, 1), 80};
  s.remote = {obs::ip_address::v4(127, 0, 0, 1), peer_port};
  s.recv_q = recv_q;
  return s;
}

obs::listener_summary look_at(std::vector<std::uint16_t> peer_ports, std::uint32_t backlog,
                              std::uint32_t drops) {
  obs::listener_summary l;
  l.local = {obs::ip_address::v4(127, 0, 0, 1), 80};
  l.backlog = backlog;
  l.drops = drops;
  for (auto p : peer_ports) {
    l.unaccepted_sockets.push_back(child(p, obs::tcp_state::close_wait, 31));
    ++l.unaccepted_close_wait;
    l.unaccepted_close_wait_bytes += 31;
  }
  l.accept_queue = static_cast<std::uint32_t>(peer_ports.size());
  l.full = l.accept_queue > l.backlog;
  return l;
}

TEST(doctor_compare, the_same_children_still_queued_is_never_accepts) {
  auto a = look_at({1, 2, 3}, 2, 10), b = look_at({1, 2, 3}, 2, 14);
  auto f = compare(&a, b, 2.0);
  EXPECT_EQ(f.v, verdict::never_accepts);
  EXPECT_EQ(f.stayed, 3u);
  EXPECT_EQ(f.left, 0u);
  EXPECT_FALSE(f.accepted_any);
  EXPECT_EQ(f.new_drops, 4u);
  EXPECT_DOUBLE_EQ(f.drops_per_second, 2.0);
  EXPECT_TRUE(is_trouble(f.v));
}

TEST(doctor_compare, accepting_some_while_dropping_is_slower_than_arrivals) {
  auto a = look_at({1, 2, 3}, 2, 10), b = look_at({3, 4, 5}, 2, 20);
  auto f = compare(&a, b, 2.0);
  EXPECT_EQ(f.v, verdict::accepts_slower_than_arrivals);
  EXPECT_EQ(f.left, 2u);
  EXPECT_EQ(f.arrived, 2u);
  EXPECT_EQ(f.stayed, 1u);
  EXPECT_TRUE(f.accepted_any);
  EXPECT_TRUE(is_trouble(f.v));
}

TEST(doctor_compare, a_shrinking_queue_without_drops_is_a_burst_that_drained) {
  auto a = look_at({1, 2, 3}, 8, 5), b = look_at({3}, 8, 5);
  auto f = compare(&a, b, 2.0);
  EXPECT_EQ(f.v, verdict::burst_drained);
  EXPECT_FALSE(is_trouble(f.v));
  EXPECT_EQ(compare(&a, look_at({}, 8, 5), 2.0).v, verdict::burst_drained);
}

TEST(doctor_compare, children_reset_in_the_queue_are_not_accepted) {
  // Measured on 6.18: a client reusing the port of a queued CLOSE-WAIT child gets a challenge
  // ACK and resets it; the child leaves sock_diag's list but Recv-Q still counts it.
  auto a = look_at({1, 2, 3}, 2, 10), b = look_at({1}, 2, 10);
  b.accept_queue = 3;
  b.full = true;
  auto f = compare(&a, b, 2.0);
  EXPECT_EQ(f.left, 2u);
  EXPECT_EQ(f.reset_in_queue, 2u);
  EXPECT_EQ(f.accepted, 0u);
  EXPECT_EQ(f.v, verdict::never_accepts);
  // Recv-Q falling with them: accepted.
  b.accept_queue = 1;
  EXPECT_EQ(compare(&a, b, 2.0).accepted, 2u);
}

TEST(doctor_compare, empty_queues_are_healthy_and_drops_alone_are_not) {
  auto a = look_at({}, 8, 5);
  EXPECT_EQ(compare(&a, look_at({}, 8, 5), 2.0).v, verdict::healthy);
  EXPECT_EQ(compare(&a, look_at({7}, 8, 5), 2.0).v, verdict::healthy); // nothing to judge yet
  EXPECT_EQ(compare(&a, look_at({}, 8, 9), 2.0).v, verdict::accepts_slower_than_arrivals);
}

// A file or directory removed when the test ends, whichever way it ends.
struct removed_at_end {
  std::filesystem::path path;
  ~removed_at_end() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// --- on real listeners ----------------------------------------------------------------------

// A listener opened in `ns` by this process: never accepts.
unique_fd listen_in(const lab::netns& ns, std::uint16_t port, int backlog) {
  lab::netns_scope in(ns);
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd.get(), backlog), 0);
  return fd;
}

// A client that connects, sends `request` and closes: its child stays queued in CLOSE-WAIT at
// request bytes + 1.
void send_and_close(const lab::netns& ns, std::uint16_t port, const std::string& request) {
  lab::netns_scope in(ns);
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
}

const json* listener_on(const json& doc, unsigned long inode, std::uint16_t port) {
  for (const auto& ns : doc.at("namespaces"))
    if (ns.at("inode") == inode)
      for (const auto& l : ns.at("listeners"))
        if (l.at("listener").at("port") == port) return &l;
  return nullptr;
}

class doctor_lab : public ::testing::Test {
protected:
  void SetUp() override {
    BACKLOG_LAB_REQUIRE_LAB();
    if (!lab::have_program("ss")) GTEST_SKIP() << "ss (iproute2) not installed";
    ns_ = lab::netns::create("doctor");
  }
  lab::netns ns_;
};

TEST_F(doctor_lab, a_listener_that_never_accepts_with_close_wait_children) {
  const std::string request = "GET /stuck HTTP/1.1\r\nHost: node\r\n\r\n";
  unique_fd l = listen_in(ns_, 30720, 8);
  for (int i = 0; i < 6; ++i)
    send_and_close(ns_, 30720, request);

  auto r = cli::run({"doctor", "--netns", ns_.proc_path(), "--interval", "0.3", "--json"});
  ASSERT_EQ(r.code, 1) << r.out << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc.at("format"), "backlog-lab.doctor/1");
  EXPECT_EQ(doc.at("trouble"), 1);
  const json* f = listener_on(doc, ns_.inode(), 30720);
  ASSERT_NE(f, nullptr) << r.out;
  EXPECT_EQ(f->at("verdict"), "never-accepts");
  EXPECT_EQ(f->at("accepted_during_interval"), false);
  EXPECT_EQ(f->at("children").at("stayed"), 6);
  const json& u = f->at("listener").at("unaccepted");
  EXPECT_EQ(u.at("close_wait"), 6);
  EXPECT_EQ(u.at("close_wait_bytes"), 6 * (request.size() + 1));
  // ss agrees on the children's bytes and the listener's Recv-Q.
  std::uint64_t ss_bytes = 0;
  for (const auto& s : testing::on_port(testing::ss_sockets(ns_), 30720)) {
    if (s.state == "CLOSE-WAIT") ss_bytes += s.recv_q;
    if (s.state == "LISTEN") {
      EXPECT_EQ(f->at("listener").at("accept_queue"), s.recv_q);
    }
  }
  EXPECT_EQ(u.at("close_wait_bytes"), ss_bytes);
  // The owner is this process, on the listener's descriptor.
  ASSERT_EQ(f->at("owners").size(), 1u) << f->dump(2);
  EXPECT_EQ(f->at("owners")[0].at("pid"), ::getpid());
  EXPECT_EQ(f->at("owners")[0].at("fd"), l.get());

  // The text says the same.
  auto t = cli::run({"doctor", "--netns", ns_.proc_path(), "--interval", "0.2"});
  EXPECT_EQ(t.code, 1);
  EXPECT_NE(t.out.find("verdict: never-accepts"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("CLOSE-WAIT 6 holding " + std::to_string(6 * (request.size() + 1))),
            std::string::npos)
      << t.out;
  EXPECT_NE(t.out.find("pid=" + std::to_string(::getpid()) + ",fd=" + std::to_string(l.get())),
            std::string::npos)
      << t.out;
}

TEST_F(doctor_lab, a_full_queue_still_dropping) {
  unique_fd l = listen_in(ns_, 8080, 1);
  for (int i = 0; i < 2; ++i)
    send_and_close(ns_, 8080, "x");
  // Connects that keep retransmitting their SYN during the interval (tcp_syn_retries default).
  std::vector<unique_fd> pending;
  {
    lab::netns_scope in(ns_);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(8080);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 4; ++i) {
      pending.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      ::connect(pending.back().get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
  }
  auto r = cli::run({"doctor", "--netns", ns_.proc_path(), "--interval", "1.5", "--json"});
  ASSERT_EQ(r.code, 1) << r.out << r.err;
  const json doc = json::parse(r.out);
  const json* f = listener_on(doc, ns_.inode(), 8080);
  ASSERT_NE(f, nullptr) << r.out;
  EXPECT_EQ(f->at("verdict"), "never-accepts");
  EXPECT_EQ(f->at("listener").at("full"), true);
  // Each pending client's first SYN retransmission (1 s) is dropped inside the interval.
  EXPECT_GE(f->at("new_drops").get<int>(), 4) << f->dump(2);
}

TEST_F(doctor_lab, all_netns_names_the_namespace_by_a_process_in_it) {
  unique_fd l = listen_in(ns_, 31425, 8);
  send_and_close(ns_, 31425, "ping");
  lab::child_process holder = lab::child_process::spawn(&ns_, [] {
    ::pause();
    return 0;
  });
  ASSERT_TRUE(
      testing::eventually([&] { return lab::netns::of_pid(holder.pid()).inode() == ns_.inode(); }));
  auto r = cli::run({"doctor", "--all-netns", "--interval", "0.3", "--json"});
  ASSERT_EQ(r.code, 1) << r.out << r.err;
  json doc = json::parse(r.out);
  bool named = false;
  for (const auto& ns : doc.at("namespaces"))
    if (ns.at("inode") == ns_.inode()) named = ns.at("pid") == holder.pid();
  EXPECT_TRUE(named) << r.out.substr(0, 4000);
  const json* f = listener_on(doc, ns_.inode(), 31425);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->at("verdict"), "never-accepts");
  // Held by this process and by the forked holder (it inherited the descriptor).
  std::set<int> pids;
  for (const auto& o : f->at("owners"))
    pids.insert(o.at("pid").get<int>());
  EXPECT_EQ(pids, (std::set<int>{::getpid(), holder.pid()}));
  // --pid reaches the same namespace through the process and names it by that process.
  auto by_pid =
      cli::run({"doctor", "--pid", std::to_string(holder.pid()), "--interval", "0.2", "--json"});
  ASSERT_EQ(by_pid.code, 1) << by_pid.out << by_pid.err;
  const json one = json::parse(by_pid.out);
  EXPECT_EQ(one.at("namespaces")[0].at("inode"), ns_.inode());
  EXPECT_EQ(one.at("namespaces")[0].at("pid"), holder.pid());
  EXPECT_NE(listener_on(one, ns_.inode(), 31425), nullptr);
  holder.kill_and_wait();
}

TEST_F(doctor_lab, nginx_serving_clients_is_not_in_trouble) {
  if (!lab::have_program("nginx")) GTEST_SKIP() << "nginx not installed";
  const std::filesystem::path dir =
      testing::nginx_test_prefix("bl-doctor", {.workers = 1, .worker_connections = 256});
  removed_at_end cleanup{dir};
  int code = -1;
  std::string out;
  std::atomic<int> answered{0};
  {
    lab::program nginx = lab::program::start(
        &ns_,
        {"nginx", {"nginx", "-p", dir.string(), "-c", (dir / "nginx.conf").string()}, {}, {}, {}});
    ASSERT_EQ(lab::wait_until_accepting(nginx, ns_, "127.0.0.1", 8080, 5s), lab::readiness::ready)
        << nginx.last_lines(true);
    std::atomic<bool> stop{false};
    std::thread clients([&] {
      lab::netns_scope in(ns_);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(8080);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      const std::string req = "GET / HTTP/1.0\r\n\r\n";
      while (!stop) {
        unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) continue;
        ::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL);
        char buf[512];
        if (::recv(fd.get(), buf, sizeof buf, 0) > 0) ++answered;
      }
    });
    auto r = cli::run({"doctor", "--netns", ns_.proc_path(), "--interval", "0.5", "--json"});
    stop = true;
    clients.join();
    code = r.code;
    out = r.out;
  }
  EXPECT_EQ(code, 0) << out;
  EXPECT_GT(answered.load(), 10);
  json doc = json::parse(out);
  EXPECT_EQ(doc.at("trouble"), 0);
  EXPECT_EQ(doc.at("namespaces")[0].at("listeners_seen"), 1);
}

TEST_F(doctor_lab, peek_shows_the_stuck_requests_and_drain_frees_the_queue) {
  // The listener belongs to another process only: a child inherits it and this one closes it.
  unique_fd mine = listen_in(ns_, 30720, 16);
  const int listener_fd = mine.get();
  lab::child_process owner = lab::child_process::spawn(nullptr, [] {
    ::pause();
    return 0;
  });
  mine = unique_fd();
  for (int i = 0; i < 5; ++i)
    send_and_close(ns_, 30720,
                   "GET /stuck-" + std::to_string(i) + " HTTP/1.1\r\nHost: node\r\n\r\n");
  auto queue = [&] {
    std::uint64_t listen_q = 999, close_wait = 0;
    for (const auto& s : testing::on_port(testing::ss_sockets(ns_), 30720)) {
      if (s.state == "LISTEN") listen_q = s.recv_q;
      if (s.state == "CLOSE-WAIT") ++close_wait;
    }
    return std::pair{listen_q, close_wait};
  };
  ASSERT_EQ(queue(), (std::pair<std::uint64_t, std::uint64_t>{5, 5}));

  auto refused = cli::run({"doctor", "--netns", ns_.proc_path(), "--peek"});
  EXPECT_EQ(refused.code, 2);
  EXPECT_NE(refused.err.find("--take"), std::string::npos) << refused.err;
  EXPECT_EQ(queue().first, 5u); // nothing taken

  auto peek = cli::run(
      {"doctor", "--netns", ns_.proc_path(), "--interval", "0.2", "--peek", "--take", "3"});
  EXPECT_EQ(peek.code, 1) << peek.out << peek.err;
  for (int i = 0; i < 3; ++i)
    EXPECT_NE(peek.out.find("| GET /stuck-" + std::to_string(i) + " HTTP/1.1"), std::string::npos)
        << peek.out;
  EXPECT_EQ(peek.out.find("/stuck-3"), std::string::npos) << peek.out;
  EXPECT_NE(
      peek.out.find("pid=" + std::to_string(owner.pid()) + ",fd=" + std::to_string(listener_fd)),
      std::string::npos)
      << peek.out;
  EXPECT_NE(peek.out.find("taken from the queue and closed: 3 connections"), std::string::npos)
      << peek.out;
  EXPECT_EQ(queue().first, 2u);

  auto drain =
      cli::run({"doctor", "--netns", ns_.proc_path(), "--interval", "0.2", "--drain", "--json"});
  EXPECT_EQ(drain.code, 1) << drain.out << drain.err;
  const json doc = json::parse(drain.out);
  const json* f = listener_on(doc, ns_.inode(), 30720);
  ASSERT_NE(f, nullptr) << drain.out;
  ASSERT_EQ(f->at("taken").size(), 2u) << f->dump(2);
  for (const auto& c : f->at("taken"))
    EXPECT_EQ(c.at("peer_closed"), true);
  EXPECT_EQ(queue(), (std::pair<std::uint64_t, std::uint64_t>{0, 0}));
  // The owner keeps its listener.
  EXPECT_EQ(::kill(owner.pid(), 0), 0);
  auto after = cli::run({"doctor", "--netns", ns_.proc_path(), "--interval", "0.1"});
  EXPECT_EQ(after.code, 0) << after.out;
  owner.kill_and_wait();
}

TEST_F(doctor_lab, nginx_with_its_worker_stopped_is_found_named_and_peeked) {
  if (!lab::have_program("nginx")) GTEST_SKIP() << "nginx not installed";
  const std::filesystem::path dir = testing::nginx_test_prefix(
      "bl-doctor", {.workers = 1, .worker_connections = 256, .listen_params = " backlog=16"});
  removed_at_end cleanup{dir};
  std::string text, peek_out;
  int text_code = -1, peek_code = -1;
  std::set<int> owner_pids, tree_pids;
  std::uint64_t queued_after_peek = 999;
  {
    lab::program nginx = lab::program::start(
        &ns_,
        {"nginx", {"nginx", "-p", dir.string(), "-c", (dir / "nginx.conf").string()}, {}, {}, {}});
    ASSERT_EQ(lab::wait_until_accepting(nginx, ns_, "127.0.0.1", 8080, 5s), lab::readiness::ready)
        << nginx.last_lines(true);
    std::vector<pid_t> tree;
    ASSERT_TRUE(testing::eventually([&] { return (tree = nginx.processes()).size() == 2; }));
    tree_pids = {tree.begin(), tree.end()};
    // The worker accepts wait_until_accepting's probe connection; then it stops.
    ASSERT_TRUE(testing::eventually([&] {
      for (const auto& s : testing::on_port(testing::ss_sockets(ns_, "-tane"), 8080))
        if (s.state == "LISTEN") return s.recv_q == 0;
      return false;
    }));
    ASSERT_EQ(::kill(tree[1], SIGSTOP), 0);
    // Clients send their request and wait for an answer that does not come.
    std::vector<unique_fd> clients;
    {
      lab::netns_scope in(ns_);
      for (int i = 0; i < 6; ++i) {
        clients.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(8080);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::connect(clients.back().get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        std::string req = "GET /frozen-" + std::to_string(i) + " HTTP/1.1\r\nHost: web\r\n\r\n";
        ASSERT_EQ(::send(clients.back().get(), req.data(), req.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(req.size()));
      }
    }
    auto r = cli::run({"doctor", "--netns", ns_.proc_path(), "--interval", "0.3", "--json"});
    text_code = r.code;
    text = r.out;
    auto p = cli::run({"doctor", "--netns", ns_.proc_path(), "--interval", "0.2", "--peek",
                       "--take", "3", "--port", "8080"});
    peek_code = p.code;
    peek_out = p.out + p.err;
    for (const auto& s : testing::on_port(testing::ss_sockets(ns_, "-tane"), 8080))
      if (s.state == "LISTEN") queued_after_peek = s.recv_q;
    ::kill(tree[1], SIGCONT);
  }

  ASSERT_EQ(text_code, 1) << text;
  const json doc = json::parse(text);
  const json* f = listener_on(doc, ns_.inode(), 8080);
  ASSERT_NE(f, nullptr) << text;
  EXPECT_EQ(f->at("verdict"), "never-accepts");
  EXPECT_EQ(f->at("listener").at("unaccepted").at("established"), 6);
  for (const auto& o : f->at("owners")) {
    EXPECT_EQ(o.at("comm"), "nginx");
    owner_pids.insert(o.at("pid").get<int>());
  }
  EXPECT_EQ(owner_pids, tree_pids); // master and worker both hold the listener

  EXPECT_EQ(peek_code, 1) << peek_out;
  for (int i = 0; i < 3; ++i)
    EXPECT_NE(peek_out.find("| GET /frozen-" + std::to_string(i) + " HTTP/1.1"), std::string::npos)
        << peek_out;
  EXPECT_EQ(peek_out.find("/frozen-3"), std::string::npos) << peek_out;
  EXPECT_EQ(queued_after_peek, 3u);
}

TEST(doctor_take, an_unprivileged_caller_is_told_what_is_missing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to another user";
  unique_fd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::listen(l.get(), 1), 0);
  struct stat st {};
  ASSERT_EQ(::fstat(l.get(), &st), 0);
  obs::socket_holder owner;
  owner.pid = ::getpid();
  owner.comm = "doctor-test";
  owner.fd = l.get();
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    std::string message = "no error";
    if (::setgroups(0, nullptr) == 0 && ::setresgid(65534, 65534, 65534) == 0 &&
        ::setresuid(65534, 65534, 65534) == 0) {
      try {
        take_queued(owner, static_cast<std::uint32_t>(st.st_ino), 1);
      } catch (const std::exception& e) {
        message = e.what();
      }
    } else {
      message = "could not drop privileges";
    }
    (void)!::write(pipefd[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string message;
  char buf[1024];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;)
    message.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_NE(message.find("not allowed to take descriptor " + std::to_string(l.get()) +
                         " of doctor-test (pid " + std::to_string(::getpid()) + ")"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("CAP_SYS_PTRACE"), std::string::npos) << message;
  // As root the same call works: nothing is queued, so nothing is taken.
  EXPECT_TRUE(take_queued(owner, static_cast<std::uint32_t>(st.st_ino), 1).empty());
  // A descriptor that is not that socket is refused.
  EXPECT_THROW(take_queued(owner, static_cast<std::uint32_t>(st.st_ino) + 1, 1), lab_error);
}

TEST_F(doctor_lab, watch_redraws_until_sigint_and_exits_0) {
  unique_fd l = listen_in(ns_, 30720, 8);
  send_and_close(ns_, 30720, "hello");
  std::string out_path =
      (std::filesystem::temp_directory_path() / ("bl-doctor-watch-" + std::to_string(::getpid())))
          .string();
  removed_at_end cleanup{out_path};
  std::vector<std::string> args = {BACKLOG_LAB_BINARY, "doctor",     "--netns", ns_.proc_path(),
                                   "--watch",          "--interval", "0.1"};
  auto child = cli::spawn_binary(args, out_path);
  auto redraws = [&] {
    std::string text = cli::read_file(out_path);
    std::size_t n = 0;
    for (auto at = text.find("\x1b[2J"); at != std::string::npos; at = text.find("\x1b[2J", at + 1))
      ++n;
    return n;
  };
  EXPECT_TRUE(testing::eventually([&] { return redraws() >= 3; })) << cli::read_file(out_path);
  child.signal(SIGINT);
  EXPECT_EQ(child.wait_for(std::chrono::seconds(5)), 0);
  std::string text = cli::read_file(out_path);
  EXPECT_NE(text.find("verdict: never-accepts"), std::string::npos) << text;
}

// The network namespaces process `pid` holds through descriptors, as /proc/PID/fd/N paths.
std::vector<std::string> namespace_fds(pid_t pid) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().rfind("net:[", 0) == 0) out.push_back(e.path().string());
  }
  return out;
}

TEST(doctor_incident, a_running_incident_lab_gives_the_runs_numbers) {
  BACKLOG_LAB_REQUIRE_LAB();
  std::string json_path = (std::filesystem::temp_directory_path() /
                           ("bl-doctor-run-" + std::to_string(::getpid()) + ".json"))
                              .string();
  removed_at_end cleanup{json_path};
  std::vector<std::string> args = {
      BACKLOG_LAB_BINARY, "run", "incident-2018-03", "--seed", "1", "-q", "--json", json_path};
  auto run = lab::child_process::spawn(nullptr, [&]() -> int {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    return 127;
  });
  // Look into the run's namespaces (held by descriptors only) for the node's held NodePort
  // listener once it is full, as the incident's were; then ask doctor about that namespace.
  std::string node;
  ASSERT_TRUE(testing::eventually(
      [&] {
        for (const auto& path : namespace_fds(run.pid())) {
          try {
            lab::netns ns = lab::netns::open(path);
            for (const auto& l : obs::census_reader(&ns).read({.summary_only = true}).listeners)
              if (l.local.port == 30720 && l.full) node = path;
          } catch (const std::exception&) {
          }
          if (!node.empty()) return true;
        }
        return false;
      },
      std::chrono::seconds(12)));
  auto r = cli::run({"doctor", "--netns", node, "--interval", "0.5", "--json"});
  ASSERT_EQ(r.code, 1) << r.out << r.err;
  const json doc = json::parse(r.out);
  json found;
  for (const auto& l : doc.at("namespaces")[0].at("listeners"))
    if (l.at("listener").at("port") == 30720) found = l;
  ASSERT_FALSE(found.is_null()) << r.out;
  EXPECT_EQ(found.at("verdict"), "never-accepts");
  EXPECT_EQ(run.wait_for(std::chrono::seconds(30)), 0);
  const json report = json::parse(cli::read_file(json_path));
  const json& m = report.at("metrics");
  const json& l = found.at("listener");
  // Once full, a never-accepting listener's queue keeps its children: doctor saw the run's end
  // state, except that clients still waiting then (ESTAB children) closed later, each FIN adding
  // 1 to its child's Recv-Q and turning it into CLOSE-WAIT.
  const json& u = l.at("unaccepted");
  const auto estab = u.at("established").get<double>();
  EXPECT_EQ(l.at("accept_queue"), m.at("listener.node.30720.accept_queue"));
  EXPECT_EQ(l.at("backlog"), m.at("listener.node.30720.backlog"));
  EXPECT_EQ(u.at("count"), m.at("listener.node.30720.children_unaccepted"));
  EXPECT_EQ(u.at("close_wait").get<double>() + estab,
            m.at("listener.node.30720.close_wait_unaccepted"));
  EXPECT_EQ(u.at("bytes").get<double>() + estab, m.at("listener.node.30720.unaccepted_bytes"));
  EXPECT_LE(l.at("drops").get<double>(), m.at("listener.node.30720.drops").get<double>());
  EXPECT_GT(l.at("drops").get<double>(), 0);
}

TEST(doctor_cli, bad_targets_exit_2_with_a_message) {
  auto r = cli::run({"doctor", "--pid", "2147483000", "--interval", "0.1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("2147483000"), std::string::npos) << r.err;
  auto both = cli::run({"doctor", "--pid", "1", "--all-netns"});
  EXPECT_EQ(both.code, 2);
  auto interval = cli::run({"doctor", "--interval", "0"});
  EXPECT_EQ(interval.code, 2);
  auto watch = cli::run({"doctor", "--watch", "--json"});
  EXPECT_EQ(watch.code, 2);
  EXPECT_NE(watch.err.find("--watch"), std::string::npos) << watch.err;
}

} // namespace
} // namespace backlog_lab::doctor
