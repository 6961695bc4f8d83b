// memory: resident memory per open client connection. Each run is a fresh process (this binary
// re-executed as a probe), so that heap pages freed by earlier work cannot hide new ones; it
// opens the connections with a client group (arrival=closed, nothing sent, waiting for a reply)
// to a listener that never accepts, and compares its VmRSS before and after. What the kernel
// holds per socket is not in VmRSS, so the delta is what backlog-lab itself spends.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench/driver/sections.hpp"
#include "harness/clients/client_group.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/sysctl.hpp"

namespace backlog_lab::bench {
namespace {

constexpr std::uint16_t memory_port = 7000;

/// A never-accepting listener with room for `connections` children (capacity = backlog + 1).
int open_listener(const lab::netns& ns, std::size_t connections) {
  lab::netns_scope in(ns);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw lab_error(errno_message("memory listener", errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(memory_port);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 ||
      ::listen(fd, static_cast<int>(connections + 64)) != 0) {
    int err = errno;
    ::close(fd);
    throw lab_error(errno_message("memory listener bind/listen", err));
  }
  return fd;
}

} // namespace

int memory_probe_main(const std::string& netns_path, std::uint16_t port, std::size_t connections) {
  lab::raise_fd_limit();
  auto ns = lab::netns::open(netns_path);
  net::io_context io{1};
  scenario::client_group_spec spec;
  spec.name = "memory";
  spec.arrival = scenario::arrival::closed;
  spec.concurrency = static_cast<std::uint32_t>(connections);
  spec.max_connections = static_cast<std::uint32_t>(connections);
  spec.request_kind = scenario::request_kind::none;
  spec.request_bytes = {0, 0};
  spec.connect_timeout_ms = 20'000;
  spec.response_timeout_ms = 60'000; // hold them open: nothing will answer
  auto run_start = std::chrono::steady_clock::now();
  clients::client_group group(io, ns, spec, tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                              {}, 1, run_start);
  double rss_before = self_status_kib("VmRSS");
  double anon_before = self_status_kib("RssAnon");
  auto start = std::chrono::steady_clock::now();
  group.start();
  auto deadline = start + std::chrono::seconds(30);
  while (group.results().connected < connections && std::chrono::steady_clock::now() < deadline)
    io.run_for(std::chrono::milliseconds(5));
  double open_ms = ms_since(start);
  double rss_after = self_status_kib("VmRSS");
  double anon_after = self_status_kib("RssAnon");
  nlohmann::json j = {{"connections", group.results().connected},
                      {"in_flight", group.in_flight()},
                      {"rss_before_kib", rss_before},
                      {"rss_after_kib", rss_after},
                      {"anon_before_kib", anon_before},
                      {"anon_after_kib", anon_after},
                      {"open_ms", open_ms}};
  std::cout << j.dump() << std::endl;
  group.abort();
  return group.results().connected == connections ? 0 : 1;
}

void run_memory_section(const compare_options& o, compare_report& report) {
  const std::string section = "memory";
  auto ns = lab::netns::create("bench-memory", 16'384);
  lab::write_sysctl(ns, "net.core.somaxconn", std::to_string(o.memory_connections + 64));
  lab::write_sysctl(ns, "net.ipv4.ip_local_port_range", "1024 65535");
  report.notes[section] =
      std::to_string(o.memory_connections) +
      " connections held open by one client group (arrival=closed, nothing sent) to a "
      "never-accepting listener; a fresh process per run; VmRSS and RssAnon before/after, "
      "divided by the connections";
  const auto n = static_cast<double>(o.memory_connections);
  for (int run = 0; run < o.runs; ++run) {
    // A fresh listener per run: closing the last one reset its queued children.
    int listener = open_listener(ns, o.memory_connections);
    auto r = exec_in(nullptr,
                     {o.self, "--memory-probe", ns.proc_path(), std::to_string(memory_port),
                      std::to_string(o.memory_connections)},
                     true, -1, std::chrono::seconds(60));
    ::close(listener);
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (r.exit_status != 0 || j.is_discarded()) {
      report.notes[section + ".warning"] = "probe run " + std::to_string(run + 1) + " exited " +
                                           std::to_string(r.exit_status) + ": " + r.out;
      continue;
    }
    report.add(section, "rss_per_connection_kib", "KiB",
               (j["rss_after_kib"].get<double>() - j["rss_before_kib"].get<double>()) / n);
    report.add(section, "anon_per_connection_kib", "KiB",
               (j["anon_after_kib"].get<double>() - j["anon_before_kib"].get<double>()) / n);
    report.add(section, "open_ms", "ms", j["open_ms"].get<double>());
    report.add(section, "rss_after_kib", "KiB", j["rss_after_kib"].get<double>());
    if (o.verbose) std::cerr << "memory run " << run + 1 << ": " << r.out;
  }
  auto& row = report.value(section, "VmRSS per open client connection (KiB, not a ratio)",
                           "rss_per_connection_kib");
  row.target = "<= 4 KiB";
  row.limit = 4.0;
}

} // namespace backlog_lab::bench
