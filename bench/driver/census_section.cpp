// census: backlog-lab's observer against `ss -tan` and against the kernel's /proc/net/tcp{,6}
// text, on one namespace of 2 * pairs sockets (socket_farm). Both tools dump the same kernel
// table: the namespace's own TCP hash table of 65,536 buckets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bench/driver/measure.hpp"
#include "bench/driver/sections.hpp"
#include "bench/support/socket_farm.hpp"
#include "harness/observer/census.hpp"

namespace backlog_lab::bench {
namespace {

constexpr std::uint16_t export_port = 9816; // the farm's listeners are on 20000 and up

// GET /metrics from the exporter at 127.0.0.1:`port` in `ns`: the whole answer (the server
// closes the connection after it), "" on failure.
std::string http_get_metrics(const lab::netns& ns, std::uint16_t port) {
  int fd = -1;
  {
    lab::netns_scope in(ns);
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) return {};
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
    char buf[65536];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
      out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

/// A `backlog-lab observe` process's wall time and peak RSS.
struct observe_cost {
  double wall_ms = 0;
  double cpu_ms = 0; ///< user + system of /usr/bin/time and the tool (wait4 counts reaped children)
  double max_rss_kib = 0;
  int exit_status = 0;
};

// Runs `backlog-lab observe --netns PATH [extra]` (stdout to /dev/null) under `/usr/bin/time -f
// %M`, which reports the peak RSS of the tool alone (a process forked from this driver would
// count the driver's own pages in its ru_maxrss until exec).
observe_cost run_observe(const compare_options& o, const std::string& ns_path,
                         const std::vector<std::string>& extra) {
  const std::string rss_file = o.work_dir + "/observe.rss";
  std::vector<std::string> argv{"/usr/bin/time", "-f",      "%M",      "-o",   rss_file,
                                o.backlog_lab,   "observe", "--netns", ns_path};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto r = exec_in(nullptr, argv, false);
  observe_cost c;
  c.wall_ms = r.wall_ms;
  c.cpu_ms = r.cpu_ms;
  c.exit_status = r.exit_status;
  std::ifstream in(rss_file);
  in >> c.max_rss_kib;
  return c;
}

} // namespace

void run_census_section(const compare_options& o, compare_report& report) {
  const std::string section = "census";
  farm_spec spec;
  spec.pairs = o.census_pairs;
  spec.close_wait = o.census_close_wait;
  spec.listeners = 50;
  spec.tcp_hash_entries = 65'536;
  auto built = std::chrono::steady_clock::now();
  socket_farm farm = socket_farm::build(spec);
  const auto& counted = farm.counted();
  report.add(section, "farm_build_ms", "ms", ms_since(built));
  report.notes[section] =
      std::to_string(counted.total) + " sockets in one namespace (" +
      std::to_string(counted.listen) + " LISTEN, " + std::to_string(counted.established) +
      " ESTAB, " + std::to_string(counted.close_wait) + " CLOSE-WAIT un-accepted children with " +
      std::to_string(spec.request_bytes) + " B + FIN unread, " + std::to_string(counted.fin_wait2) +
      " FIN-WAIT-2 clients; client fds held by " + std::to_string(farm.workers()) +
      " worker processes); TCP hash table of 65536 buckets for the namespace, walked alike by "
      "every tool";

  // ss must see what we see: count its lines once (not timed).
  auto listing = exec_in(&farm.ns(), {"ss", "-tan"}, true);
  auto ss_lines = static_cast<double>(std::count(listing.out.begin(), listing.out.end(), '\n'));
  report.add(section, "ss_sockets_listed", "sockets", ss_lines - 1);

  const bool observe = !o.backlog_lab.empty() && ::access(o.backlog_lab.c_str(), X_OK) == 0;
  const bool timed = ::access("/usr/bin/time", X_OK) == 0;
  const std::string ns_path = farm.ns().proc_path();
  // A namespace with no socket: `observe --json` of it against the farm's shows whether the
  // streamed JSON's memory grows with the socket count.
  lab::netns empty = lab::netns::create("census-empty");
  for (int run = 0; run < o.runs; ++run) {
    // Alternate who goes first, so neither always meets a warmer cache.
    auto time_ss = [&] {
      auto r = exec_in(&farm.ns(), {"ss", "-tan"}, false);
      report.add(section, "ss_tan_ms", "ms", r.wall_ms);
      report.add(section, "ss_tan_cpu_ms", "ms", r.cpu_ms);
    };
    auto time_ours = [&] {
      // Cold: a new reader (netlink socket, buffers), a full census: every socket kept, the
      // totals, and per listener its accept queue and children by state, Recv-Q and peer.
      auto start = std::chrono::steady_clock::now();
      double cpu_start = thread_cpu_ms();
      observer::census_reader reader(&farm.ns());
      observer::census c = reader.read();
      report.add(section, "observer_full_cold_ms", "ms", ms_since(start));
      report.add(section, "observer_full_cold_cpu_ms", "ms", thread_cpu_ms() - cpu_start);
      if (c.socket_count != counted.total)
        report.notes[section + ".warning"] = "observer counted " + std::to_string(c.socket_count) +
                                             " sockets, farm " + std::to_string(counted.total);
      // Warm: the same reader again (as the runner's sampler uses it).
      start = std::chrono::steady_clock::now();
      reader.read(c);
      report.add(section, "observer_full_warm_ms", "ms", ms_since(start));
      start = std::chrono::steady_clock::now();
      reader.read(c, {.summary_only = true});
      report.add(section, "observer_summary_only_ms", "ms", ms_since(start));
      // The observer's opt-in: two halves dumped on two threads (more CPU in all, less wall
      // time). A fresh reader, so it is cold like the first figure.
      start = std::chrono::steady_clock::now();
      observer::census_reader two(&farm.ns());
      observer::census c2;
      two.read(c2, {.threads = 2});
      report.add(section, "observer_full_cold_2threads_ms", "ms", ms_since(start));
    };
    in_alternating_order(run, time_ss, time_ours);
    auto proc = exec_in(&farm.ns(), {"cat", "/proc/net/tcp", "/proc/net/tcp6"}, false);
    report.add(section, "proc_net_tcp_cat_ms", "ms", proc.wall_ms);
    if (observe) {
      // The tool as a user runs it: a process that opens the namespace and prints the
      // per-listener summaries.
      auto r =
          exec_in(nullptr, {o.backlog_lab, "observe", "--netns", ns_path, "--listeners"}, false);
      report.add(section, "observe_listeners_process_ms", "ms", r.wall_ms);
      if (r.exit_status != 0)
        report.notes[section + ".observe"] =
            "backlog-lab observe exited " + std::to_string(r.exit_status);
    }
    if (observe && timed) {
      // Every socket listed: as text (ss's columns, kept in memory to align them) and as the
      // streamed JSON document (docs/observe-json.md), both to /dev/null.
      auto time_text = [&] {
        auto c = run_observe(o, ns_path, {});
        report.add(section, "observe_text_process_ms", "ms", c.wall_ms);
        report.add(section, "observe_text_cpu_ms", "ms", c.cpu_ms);
        report.add(section, "observe_text_max_rss_kib", "KiB", c.max_rss_kib);
      };
      auto time_json = [&] {
        auto c = run_observe(o, ns_path, {"--json"});
        report.add(section, "observe_json_process_ms", "ms", c.wall_ms);
        report.add(section, "observe_json_cpu_ms", "ms", c.cpu_ms);
        report.add(section, "observe_json_max_rss_kib", "KiB", c.max_rss_kib);
        if (c.exit_status != 0)
          report.notes[section + ".observe_json"] =
              "backlog-lab observe --json exited " + std::to_string(c.exit_status);
      };
      in_alternating_order(run, time_text, time_json);
      auto none = run_observe(o, empty.proc_path(), {"--json"});
      report.add(section, "observe_json_empty_max_rss_kib", "KiB", none.max_rss_kib);
    }
    if (o.verbose) std::cerr << "census run " << run + 1 << " done\n";
  }

  // The exporter as deployed: a long-running `backlog-lab export` in the farm's namespace,
  // scraped over HTTP on its loopback, against `ss -tlmp`, which lists the same listeners with
  // their drops and owners. Started after the census runs, so that its own socket and its
  // scrapes' connections are not among the sockets those counted.
  std::optional<peer_process> exporter;
  if (observe) {
    exporter = peer_process::start(
        farm.ns(),
        {o.backlog_lab, "export", "--listen", "127.0.0.1:" + std::to_string(export_port)}, -1,
        o.work_dir + "/export.log");
    if (!wait_listening(farm.ns(), export_port)) {
      report.notes[section + ".export"] = "backlog-lab export did not start (export.log)";
      exporter.reset();
    }
  }
  for (int run = 0; exporter && run < o.runs; ++run) {
    auto time_ss_tlmp = [&] {
      auto r = exec_in(&farm.ns(), {"ss", "-tlmp"}, false);
      report.add(section, "ss_tlmp_ms", "ms", r.wall_ms);
      report.add(section, "ss_tlmp_cpu_ms", "ms", r.cpu_ms);
    };
    auto time_scrape = [&] {
      auto start = std::chrono::steady_clock::now();
      double cpu_start = exporter->cpu_ms();
      std::string page = http_get_metrics(farm.ns(), export_port);
      report.add(section, "export_scrape_ms", "ms", ms_since(start));
      // Both of the exporter's threads (the owner pass runs beside the census), in clock ticks.
      report.add(section, "export_scrape_cpu_ms", "ms", exporter->cpu_ms() - cpu_start);
      if (page.find("backlog_lab_listener_drops_total") == std::string::npos)
        report.notes[section + ".export"] = "a scrape lacked the listeners' drops";
    };
    in_alternating_order(run, time_ss_tlmp, time_scrape);
  }

  report
      .ratio(section, "observer full census, cold (in-process) / ss -tan", "observer_full_cold_ms",
             "ss_tan_ms")
      .at_most(0.5);
  report.ratio(section, "observer full census, cold / ss -tan, CPU time",
               "observer_full_cold_cpu_ms", "ss_tan_cpu_ms");
  report.ratio(section, "observer full census, warm reader / ss -tan", "observer_full_warm_ms",
               "ss_tan_ms");
  report.ratio(section, "observer full census, cold, threads = 2 / ss -tan",
               "observer_full_cold_2threads_ms", "ss_tan_ms");
  if (observe)
    report.ratio(section, "`backlog-lab observe --listeners` (process) / ss -tan",
                 "observe_listeners_process_ms", "ss_tan_ms");
  if (observe && timed) {
    report
        .ratio(section, "`backlog-lab observe --json` / `backlog-lab observe` (text), every socket",
               "observe_json_process_ms", "observe_text_process_ms")
        .at_most(1.5);
    report.ratio(section, "`observe --json` / `observe` (text), CPU time", "observe_json_cpu_ms",
                 "observe_text_cpu_ms");
    report
        .ratio(section, "`observe --json` / `observe` (text), peak RSS", "observe_json_max_rss_kib",
               "observe_text_max_rss_kib")
        .at_most(1.0);
    report
        .ratio(section, "`observe --json` peak RSS, the farm / a namespace without sockets",
               "observe_json_max_rss_kib", "observe_json_empty_max_rss_kib")
        .at_most(1.25);
  }
  report.ratio(section, "observer full census, cold / cat /proc/net/tcp{,6}",
               "observer_full_cold_ms", "proc_net_tcp_cat_ms");
  if (exporter)
    report
        .ratio(section, "`backlog-lab export`: one scrape over HTTP / ss -tlmp", "export_scrape_ms",
               "ss_tlmp_ms")
        .at_most(0.5);
  if (exporter)
    report.ratio(section, "`backlog-lab export`: one scrape / ss -tlmp, CPU time",
                 "export_scrape_cpu_ms", "ss_tlmp_cpu_ms");
}

} // namespace backlog_lab::bench
