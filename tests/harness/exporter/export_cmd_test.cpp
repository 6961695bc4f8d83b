// `backlog-lab export` as a running program: HTTP scrapes of a lab namespace before and after a
// burst against a never-accepting listener (drops as ss -tlm counts them), abuse (slowloris, many
// connections, garbage, oversized requests) with the exporter still answering, the textfile,
// and bad flags.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

#include "harness/core/unique_fd.hpp"
#include "harness/lab/process.hpp"
#include "tests/harness/exporter/metrics_text.hpp"
#include "tests/harness/lab/tcp_util.hpp"
#include "tests/support/kernel_view.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::testing {
namespace {

using namespace std::chrono_literals;

// A running `backlog-lab export --listen 127.0.0.1:0 ARGS...`, killed when destroyed.
class exporter_process {
public:
  explicit exporter_process(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    std::vector<std::string> argv{BACKLOG_LAB_BINARY, "export", "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(fds[1], STDERR_FILENO);
      std::vector<char*> raw;
      for (auto& a : argv)
        raw.push_back(a.data());
      raw.push_back(nullptr);
      ::execv(raw[0], raw.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    err_ = unique_fd(fds[0]);
    // "backlog-lab export: serving http://127.0.0.1:PORT/metrics (...)"
    std::string seen;
    for (int i = 0; i < 100 && seen.find("/metrics") == std::string::npos; ++i) {
      pollfd p{err_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      char buf[512];
      ssize_t n = ::read(err_.get(), buf, sizeof buf);
      if (n <= 0) break;
      seen.append(buf, static_cast<std::size_t>(n));
    }
    auto at = seen.find("127.0.0.1:");
    if (at == std::string::npos) throw std::runtime_error("exporter did not start: " + seen);
    port_ = static_cast<std::uint16_t>(std::stoul(seen.substr(at + 10)));
  }
  ~exporter_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  exporter_process(const exporter_process&) = delete;
  exporter_process& operator=(const exporter_process&) = delete;

  std::uint16_t port() const { return port_; }
  bool alive() const { return ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  /// SIGTERM and the exit status (or -1 if it did not exit within 5 s).
  int terminate() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

private:
  pid_t pid_ = -1;
  unique_fd err_;
  std::uint16_t port_ = 0;
};

// A blocking connection to the exporter with a 5 s hang guard on every read and write.
unique_fd dial(std::uint16_t port) {
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    throw std::runtime_error("connect to the exporter failed");
  return fd;
}

void send_all(const unique_fd& fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return; // the server may close on us; that is what some tests want
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Everything until the server closes (or the 5 s guard).
std::string read_all(const unique_fd& fd) {
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

struct http_answer {
  int status = 0;
  std::string body;
};

http_answer parse_answer(const std::string& raw) {
  http_answer a;
  if (raw.rfind("HTTP/1.", 0) == 0 && raw.size() > 12) a.status = std::stoi(raw.substr(9, 3));
  auto end = raw.find("\r\n\r\n");
  if (end != std::string::npos) a.body = raw.substr(end + 4);
  return a;
}

http_answer get(std::uint16_t port, const std::string& target = "/metrics") {
  auto fd = dial(port);
  send_all(fd, "GET " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  return parse_answer(read_all(fd));
}

double exporter_metric(const std::string& text, const std::string& name,
                       const std::vector<std::string>& labels = {}) {
  return metric_value(text, name, labels).value_or(-1);
}

class ExportCommand : public ::testing::Test {
protected:
  void SetUp() override { BACKLOG_LAB_REQUIRE_LAB(); }
  lab::netns ns_ = lab::netns::create("export-test");
};

TEST_F(ExportCommand, ScrapesOfAFullQueueTakeNothingAndPassPromtool) {
  constexpr std::uint16_t port = 8080;
  auto listener = tcp_listen(ns_, "127.0.0.1", port, 2); // never accepts
  std::vector<unique_fd> clients;
  for (int i = 0; i < 6; ++i)
    clients.push_back(tcp_connect_start(ns_, "", "127.0.0.1", port));
  std::this_thread::sleep_for(100ms);
  exporter_process exporter({"--netns", ns_.proc_path()});
  const std::vector<std::string> at{"port=\"8080\""};

  // Read-only: scraping leaves the queue as it was (nothing accepted or taken).
  for (int i = 0; i < 3; ++i) {
    auto page = get(exporter.port());
    ASSERT_EQ(page.status, 200);
    EXPECT_EQ(exporter_metric(page.body, "backlog_lab_listener_accept_queue", at), 3);
  }
  auto ss = on_port(ss_sockets(ns_, "-tlne"), port);
  ASSERT_EQ(ss.size(), 1u);
  EXPECT_EQ(ss[0].recv_q, 3u);
  // The listener's drops: a burst of SYNs to the full queue makes the counter grow by what
  // `ss -tlm` shows (d<N>), read just before and just after the scrape.
  auto drops_now = [&] {
    auto before = ss_listener_drops(ns_, port);
    auto page = get(exporter.port());
    auto after = ss_listener_drops(ns_, port);
    EXPECT_TRUE(before && after);
    double scraped = exporter_metric(page.body, "backlog_lab_listener_drops_total", at);
    EXPECT_GE(scraped, static_cast<double>(before.value_or(0)));
    EXPECT_LE(scraped, static_cast<double>(after.value_or(0)));
    return scraped;
  };
  const double drops_before = drops_now();
  for (int i = 0; i < 10; ++i)
    clients.push_back(tcp_connect_start(ns_, "", "127.0.0.1", port));
  std::this_thread::sleep_for(200ms);
  EXPECT_GE(drops_now(), drops_before + 10) << "each SYN of the burst dropped once at least";

  // Its owner, as ss -tlp names it: this test process.
  std::string comm;
  std::getline(std::ifstream("/proc/self/comm"), comm);
  auto page = get(exporter.port());
  EXPECT_EQ(exporter_metric(page.body, "backlog_lab_listener_owner_info",
                            {"port=\"8080\"", "pid=\"" + std::to_string(::getpid()) + "\"",
                             "comm=\"" + comm + "\""}),
            1)
      << page.body;
  EXPECT_EQ(exporter_metric(page.body, "backlog_lab_listener_accept_queue",
                            {"port=\"8080\"", "owner=\"" + comm + "\""}),
            3);
  if (lab::have_program("promtool")) {
    auto check = promtool_check(page.body);
    EXPECT_EQ(check.status, 0) << check.output << "\n" << page.body;
  }
  EXPECT_EQ(exporter.terminate(), 0);
}

TEST_F(ExportCommand, SlowlorisClientsAreCutAtTheRequestTimeoutWhileScrapesGoOn) {
  exporter_process exporter({"--netns", ns_.proc_path(), "--request-timeout", "0.5"});
  std::vector<unique_fd> slow;
  for (int i = 0; i < 4; ++i) {
    slow.push_back(dial(exporter.port()));
    send_all(slow.back(), "GET /metrics HTTP/1.1\r\nX-Slow: ");
  }
  // They drip a byte every 50 ms; a scrape meanwhile is answered.
  for (int tick = 0; tick < 5; ++tick) {
    for (auto& s : slow)
      send_all(s, "a");
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(get(exporter.port()).status, 200);
  // Past the timeout (0.5 s from their start, however they drip) each is closed unanswered.
  for (auto& s : slow) {
    send_all(s, "a");
    EXPECT_EQ(read_all(s), "");
  }
  auto page = get(exporter.port());
  ASSERT_EQ(page.status, 200);
  EXPECT_GE(exporter_metric(page.body, "backlog_lab_exporter_http_connections_closed_total",
                            {"reason=\"timeout\""}),
            4);
  EXPECT_TRUE(exporter.alive());
}

TEST_F(ExportCommand, ManyIdleConnectionsCannotLockScrapersOut) {
  exporter_process exporter({"--netns", ns_.proc_path(), "--max-connections", "8"});
  std::vector<unique_fd> idle;
  for (int i = 0; i < 40; ++i)
    idle.push_back(dial(exporter.port()));
  std::this_thread::sleep_for(100ms);
  auto page = get(exporter.port());
  ASSERT_EQ(page.status, 200);
  // 40 + 1 arrived with room for 8: the oldest idle ones made way.
  EXPECT_GE(exporter_metric(page.body, "backlog_lab_exporter_http_connections_closed_total",
                            {"reason=\"evicted\""}),
            33);
  EXPECT_LE(exporter_metric(page.body, "backlog_lab_exporter_http_connections"), 8);
  EXPECT_TRUE(exporter.alive());
}

TEST_F(ExportCommand, ManyScrapersAtOnceAreAllAnsweredAndShareCollections) {
  exporter_process exporter({"--netns", ns_.proc_path()});
  constexpr int scrapers = 16;
  std::vector<int> status(scrapers, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < scrapers; ++i)
    threads.emplace_back([&, i] { status[i] = get(exporter.port()).status; });
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < scrapers; ++i)
    EXPECT_EQ(status[i], 200) << "scraper " << i;
  auto page = get(exporter.port());
  ASSERT_EQ(page.status, 200);
  EXPECT_LE(exporter_metric(page.body, "backlog_lab_exporter_collections_total"), scrapers + 1);
  EXPECT_EQ(
      exporter_metric(page.body, "backlog_lab_exporter_http_requests_total", {"outcome=\"ok\""}),
      scrapers + 1);
}

TEST_F(ExportCommand, GarbageAndOversizedRequestsGetErrorsAndTheExporterStillAnswers) {
  exporter_process exporter({"--netns", ns_.proc_path()});
  struct bad_request {
    std::string bytes;
    int status;
  };
  std::string binary(3000, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i)
    binary[i] = static_cast<char>((i * 7919) & 0xff);
  const std::vector<bad_request> cases{
      {"GARBAGE\r\n\r\n", 400},
      {binary, 400},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n",
       431},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n", 413},
      {"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405},
      {"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404},
      {"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n", 400},
  };
  for (const auto& c : cases) {
    auto fd = dial(exporter.port());
    send_all(fd, c.bytes);
    ::shutdown(fd.get(), SHUT_WR);
    EXPECT_EQ(parse_answer(read_all(fd)).status, c.status) << c.bytes.substr(0, 60);
  }
  auto page = get(exporter.port());
  ASSERT_EQ(page.status, 200);
  EXPECT_GE(
      exporter_metric(page.body, "backlog_lab_exporter_http_requests_total", {"outcome=\"bad\""}),
      static_cast<double>(cases.size()));
  EXPECT_TRUE(exporter.alive());
}

TEST_F(ExportCommand, TextfileIsWrittenWholeAndPassesPromtool) {
  auto dir =
      std::filesystem::temp_directory_path() / ("backlog-lab-export-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "backlog_lab.prom";
  auto r = lab::run_command(nullptr, {BACKLOG_LAB_BINARY, "export", "--netns", ns_.proc_path(),
                                      "--textfile", file.string()});
  EXPECT_EQ(r.exit_status, 0) << r.err;
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("backlog_lab_netns_tcp_sockets"), std::string::npos);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1) << "no temp left";
  if (lab::have_program("promtool")) {
    auto check = promtool_check(text);
    EXPECT_EQ(check.status, 0) << check.output;
  }
  std::filesystem::remove_all(dir);

  auto bad = lab::run_command(nullptr, {BACKLOG_LAB_BINARY, "export", "--netns", ns_.proc_path(),
                                        "--textfile", "/nonexistent-dir/x.prom"});
  EXPECT_EQ(bad.exit_status, 2);
  EXPECT_NE(bad.err.find("/nonexistent-dir/x.prom"), std::string::npos) << bad.err;
}

TEST(ExportFlags, BadInputExitsTwoNamingTheFlag) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--listen", "localhost:80"},
                                               {"--listen", "1.2.3.4:99999"},
                                               {"--listen", "::1:80"},
                                               {"--listen", "1.2.3.4"},
                                               {},
                                               {"--listen", ":0", "--pid", "0"}}) {
    std::vector<std::string> argv{BACKLOG_LAB_BINARY, "export"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = lab::run_command(nullptr, argv);
    EXPECT_EQ(r.exit_status, 2) << r.err;
    EXPECT_TRUE(r.err.find("--listen") != std::string::npos ||
                r.err.find("--pid") != std::string::npos)
        << r.err;
  }
}

} // namespace
} // namespace backlog_lab::testing
