// load, openloop and proxy: one namespace, one nginx (one worker) as the backend of everything.
//   load:     backlog-lab's clients vs wrk, closed loop, 50 connections, one thread, each
//             request on a new connection (`Connection: close`).
//   openloop: constant arrivals at 2,000, 10,000 and 20,000 connections/s (latency from each
//             connection's intended start, as wrk2 counts it).
//   proxy:    proxy_sim (userspace mode, healthy endpoint) vs haproxy (tcp mode, one thread),
//             each in front of the same nginx: wrk's rate through it, and the p99 latency it adds
//             at a fixed open-loop rate.
#include <cstdio>
#include <iostream>

#include "bench/driver/peers.hpp"
#include "bench/driver/sections.hpp"
#include "harness/lab/sysctl.hpp"

namespace backlog_lab::bench {
namespace {

constexpr std::uint16_t nginx_port = 8080;
constexpr std::uint16_t haproxy_port = 8081;
constexpr std::uint16_t proxy_sim_port = 8082;

/// Two cores: the server side on CPU 0, the client side on CPU 1.
constexpr int server_cpu = 0;
constexpr int client_cpu = 1;

std::string rate_name(double rate) {
  return std::to_string(static_cast<long>(rate));
}

/// 2 -> "2", 0.5 -> "0.5".
std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

} // namespace

void run_traffic_sections(const compare_options& o, bool load, bool open_loop, bool proxy,
                          compare_report& report) {
  auto ns = lab::netns::create("bench-traffic", 16'384);
  // Hundreds of thousands of short connections over loopback: the whole port range, and ports
  // in TIME_WAIT reusable (the same settings for every tool).
  lab::write_sysctl(ns, "net.ipv4.ip_local_port_range", "1024 65535");
  lab::write_sysctl(ns, "net.ipv4.tcp_tw_reuse", "1");
  auto nginx = start_nginx(ns, o.work_dir, nginx_port, server_cpu);
  const std::string setup = "nginx 1.22 (master_process off, one worker, return 200) on CPU " +
                            std::to_string(server_cpu) + ", clients on CPU " +
                            std::to_string(client_cpu) + ", loopback in one namespace";

  if (load) {
    const std::string section = "load";
    report.notes[section] = setup + "; wrk -t1 -c50 -d" + std::to_string(o.load_seconds) +
                            "s -H 'Connection: close' vs client_group arrival=closed "
                            "concurrency=50 (one thread, GET of 55 B with Connection: close)";
    // Warm-up, not recorded: nginx's and the kernel's caches, both tools once.
    run_wrk(ns, nginx_port, 1, client_cpu);
    run_closed_loop(ns, nginx_port, 50, 1.0, client_cpu);
    for (int run = 0; run < o.runs; ++run) {
      auto time_wrk = [&] {
        double nginx_before = nginx.cpu_ms();
        auto w = run_wrk(ns, nginx_port, o.load_seconds, client_cpu);
        report.add(section, "wrk_nginx_busy_share", "share",
                   (nginx.cpu_ms() - nginx_before) / (o.load_seconds * 1000.0));
        report.add(section, "wrk_conn_per_s", "conn/s", w.requests_per_s);
        report.add(section, "wrk_cpu_us_per_conn", "us",
                   w.requests ? w.cpu_ms * 1000.0 / static_cast<double>(w.requests) : 0);
        report.add(section, "wrk_errors", "count",
                   static_cast<double>(w.socket_errors + w.non_2xx));
        report.add(section, "wrk_busy_share", "share", w.cpu_ms / (o.load_seconds * 1000.0));
      };
      auto time_ours = [&] {
        double nginx_before = nginx.cpu_ms();
        auto c = run_closed_loop(ns, nginx_port, 50, o.load_seconds, client_cpu);
        report.add(section, "clients_nginx_busy_share", "share",
                   (nginx.cpu_ms() - nginx_before) / (c.seconds * 1000.0));
        report.add(section, "clients_busy_share", "share", c.cpu_ms / (c.seconds * 1000.0));
        report.add(section, "clients_conn_per_s", "conn/s",
                   static_cast<double>(c.answered) / c.seconds);
        report.add(section, "clients_cpu_us_per_conn", "us",
                   c.answered ? c.cpu_ms * 1000.0 / static_cast<double>(c.answered) : 0);
        report.add(section, "clients_not_answered", "count",
                   static_cast<double>(c.finished - c.answered));
      };
      in_alternating_order(run, time_wrk, time_ours);
      if (o.verbose) std::cerr << "load run " << run + 1 << " done\n";
    }
    report
        .ratio(section, "clients / wrk, new connections per second (1 thread)",
               "clients_conn_per_s", "wrk_conn_per_s")
        .at_least(1.0);
    report.ratio(section, "clients / wrk, client CPU time per connection",
                 "clients_cpu_us_per_conn", "wrk_cpu_us_per_conn");
  }

  if (open_loop) {
    const std::string section = "openloop";
    report.notes[section] =
        setup + "; client_group arrival=constant for " + seconds_text(o.open_loop_seconds) +
        " s per run; achieved = connections actually started (connect called) inside the window "
        "/ window; latency from each connection's intended start (wrk2's correction)";
    for (double rate : {2'000.0, 10'000.0, 20'000.0}) {
      const std::string k = rate_name(rate);
      for (int run = 0; run < o.runs; ++run) {
        double nginx_before = nginx.cpu_ms();
        auto c = run_open_loop(ns, nginx_port, rate, o.open_loop_seconds, client_cpu);
        report.add(section, "rate_" + k + "_nginx_busy_share", "share",
                   (nginx.cpu_ms() - nginx_before) / (o.open_loop_seconds * 1000.0));
        report.add(section, "rate_" + k + "_client_busy_share", "share",
                   c.cpu_ms / (o.open_loop_seconds * 1000.0));
        report.add(section, "rate_" + k + "_achieved_per_s", "conn/s",
                   static_cast<double>(c.started) / c.seconds);
        report.add(section, "rate_" + k + "_answered_share", "share",
                   c.finished ? static_cast<double>(c.answered) / static_cast<double>(c.finished)
                              : 0);
        report.add(section, "rate_" + k + "_p50_ms", "ms", c.p50_ms);
        report.add(section, "rate_" + k + "_p99_ms", "ms", c.p99_ms);
        report.add(section, "rate_" + k + "_max_start_lag_ms", "ms", c.max_start_lag_ms);
        report.add(section, "rate_" + k + "_target", "conn/s", rate);
      }
      auto& row = report.ratio(section, "achieved / target rate at " + k + "/s",
                               "rate_" + k + "_achieved_per_s", "rate_" + k + "_target");
      row.target = "1 +- 1%";
      row.limit = 1.0;
      row.tolerance = 0.01;
      if (o.verbose) std::cerr << "open loop " << k << "/s done\n";
    }
  }

  if (proxy) {
    const std::string section = "proxy";
    // The proxy shares CPU 0 with its backend, the client has CPU 1: the proxy's own cost then
    // decides the rate. (The proxy alone on CPU 0 leaves nginx and wrk sharing CPU 1, which then
    // caps both proxies at the same rate; nothing pinned lets three processes on two cores
    // collide at random and the spread swamps the difference.)
    constexpr int proxy_cpu = server_cpu;
    constexpr double latency_rate = 2'000;
    auto haproxy = start_haproxy(ns, o.work_dir, haproxy_port, nginx_port, proxy_cpu);
    auto sim = start_proxy_sim(ns, proxy_sim_port, nginx_port, proxy_cpu);
    report.notes[section] =
        "haproxy 2.6 (mode tcp, nbthread 1) and proxy_sim userspace (one Service, the nginx "
        "endpoint) on CPU " +
        std::to_string(proxy_cpu) + " with nginx, the client on CPU " + std::to_string(client_cpu) +
        "; rate: wrk -t1 -c50 -d" + std::to_string(o.load_seconds) +
        "s -H 'Connection: close' through each; added p99: client_group open loop at " +
        rate_name(latency_rate) + "/s for " + seconds_text(o.open_loop_seconds) +
        " s, p99 response latency through the proxy minus direct to nginx";
    run_wrk(ns, haproxy_port, 1, client_cpu);
    run_wrk(ns, proxy_sim_port, 1, client_cpu);
    for (int run = 0; run < o.runs; ++run) {
      auto through = [&](const std::string& who, std::uint16_t port, peer_process& p) {
        double cpu_before = p.cpu_ms();
        auto w = run_wrk(ns, port, o.load_seconds, client_cpu);
        double cpu = p.cpu_ms() - cpu_before;
        report.add(section, who + "_conn_per_s", "conn/s", w.requests_per_s);
        report.add(section, who + "_cpu_us_per_conn", "us",
                   w.requests ? cpu * 1000.0 / static_cast<double>(w.requests) : 0);
        report.add(section, who + "_errors", "count",
                   static_cast<double>(w.socket_errors + w.non_2xx));
      };
      in_alternating_order(
          run, [&] { through("haproxy", haproxy_port, haproxy); },
          [&] { through("proxy_sim", proxy_sim_port, sim); });
      auto direct = run_open_loop(ns, nginx_port, latency_rate, o.open_loop_seconds, client_cpu);
      auto h = run_open_loop(ns, haproxy_port, latency_rate, o.open_loop_seconds, client_cpu);
      auto s = run_open_loop(ns, proxy_sim_port, latency_rate, o.open_loop_seconds, client_cpu);
      report.add(section, "direct_p99_ms", "ms", direct.p99_ms);
      report.add(section, "haproxy_p99_ms", "ms", h.p99_ms);
      report.add(section, "proxy_sim_p99_ms", "ms", s.p99_ms);
      report.add(section, "haproxy_added_p99_ms", "ms", h.p99_ms - direct.p99_ms);
      report.add(section, "proxy_sim_added_p99_ms", "ms", s.p99_ms - direct.p99_ms);
      if (o.verbose) std::cerr << "proxy run " << run + 1 << " done\n";
    }
    if (!haproxy.alive() || !sim.alive())
      report.notes[section + ".warning"] = "a proxy died during the runs";
    report
        .ratio(section, "proxy_sim / haproxy, connections per second", "proxy_sim_conn_per_s",
               "haproxy_conn_per_s")
        .at_least(1.0);
    report.ratio(section, "proxy_sim / haproxy, proxy CPU time per connection",
                 "proxy_sim_cpu_us_per_conn", "haproxy_cpu_us_per_conn");
    // Each proxy adds a fraction of a millisecond at this load, near the p99's own run-to-run
    // noise, so a quotient of the two swings wildly (and changes sign): show both as they are.
    report.value(section, "added p99 latency through proxy_sim (ms, not a ratio)",
                 "proxy_sim_added_p99_ms");
    report.value(section, "added p99 latency through haproxy (ms, not a ratio)",
                 "haproxy_added_p99_ms");
  }
}

} // namespace backlog_lab::bench
