#include "bench/driver/peers.hpp"

#include <chrono>
#include <fstream>
#include <regex>

#include "harness/clients/client_group.hpp"
#include "harness/clients/http_message.hpp"
#include "harness/core/error.hpp"
#include "proxy_sim/userspace/userspace_proxier.hpp"

namespace backlog_lab::bench {
namespace {

using clock = std::chrono::steady_clock;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw lab_error("cannot write " + path);
}

/// "1.23ms" -> 1.23, "850.00us" -> 0.85, "1.02s" -> 1020.
double wrk_duration_ms(const std::string& value, const std::string& unit) {
  double v = std::stod(value);
  if (unit == "us") return v / 1000.0;
  if (unit == "s") return v * 1000.0;
  if (unit == "m") return v * 60'000.0;
  return v;
}

scenario::client_group_spec http_spec(const std::string& name) {
  scenario::client_group_spec spec;
  spec.name = name;
  // The shortest GET the clients build (`Connection: close`, as wrk -H sends it).
  spec.request_bytes = {clients::request_source::min_http_bytes,
                        clients::request_source::min_http_bytes};
  spec.connect_timeout_ms = 3000;
  spec.response_timeout_ms = 3000;
  return spec;
}

tcp::endpoint loopback(std::uint16_t port) {
  return tcp::endpoint(net::ip::make_address("127.0.0.1"), port);
}

double to_ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

/// Answered and finished counts and the response latency summary of a finished run.
void take_outcomes(const clients::client_results& res, clients_run& r) {
  r.answered = res.counts[clients::outcome::answered];
  r.finished = res.counts.total();
  auto s = res.response_latency.summary();
  r.p50_ms = to_ms(s.p50);
  r.p99_ms = to_ms(s.p99);
  r.max_start_lag_ms = to_ms(res.max_start_lag);
}

} // namespace

peer_process start_nginx(const lab::netns& ns, const std::string& dir, std::uint16_t port,
                         int cpu) {
  const std::string conf = dir + "/nginx.conf";
  write_text(conf, "daemon off;\n"
                   "master_process off;\n"
                   "worker_processes 1;\n"
                   "pid " +
                       dir +
                       "/nginx.pid;\n"
                       "error_log " +
                       dir +
                       "/nginx-error.log crit;\n"
                       "events { worker_connections 16384; multi_accept on; }\n"
                       "http {\n"
                       "  access_log off;\n"
                       "  client_body_temp_path " +
                       dir +
                       "/body;\n"
                       "  proxy_temp_path " +
                       dir +
                       "/proxy;\n"
                       "  fastcgi_temp_path " +
                       dir +
                       "/fastcgi;\n"
                       "  uwsgi_temp_path " +
                       dir +
                       "/uwsgi;\n"
                       "  scgi_temp_path " +
                       dir +
                       "/scgi;\n"
                       "  keepalive_timeout 0;\n"
                       "  server {\n"
                       "    listen 127.0.0.1:" +
                       std::to_string(port) +
                       " backlog=4096;\n"
                       "    location / { default_type text/plain; return 200 \"ok\\n\"; }\n"
                       "  }\n"
                       "}\n");
  auto p = peer_process::start(ns, {"nginx", "-e", dir + "/nginx-error.log", "-p", dir, "-c", conf},
                               cpu, dir + "/nginx.out");
  if (!wait_listening(ns, port))
    throw lab_error("nginx did not listen on 127.0.0.1:" + std::to_string(port) + " (see " + dir +
                    "/nginx-error.log)");
  return p;
}

peer_process start_haproxy(const lab::netns& ns, const std::string& dir, std::uint16_t port,
                           std::uint16_t backend, int cpu) {
  const std::string conf = dir + "/haproxy.cfg";
  write_text(conf, "global\n"
                   "  nbthread 1\n"
                   "  maxconn 9000\n" // 2 fds per connection within the 20,000-fd limit
                   "defaults\n"
                   "  mode tcp\n"
                   "  timeout connect 5s\n"
                   "  timeout client 30s\n"
                   "  timeout server 30s\n"
                   "frontend fe\n"
                   "  bind 127.0.0.1:" +
                       std::to_string(port) +
                       "\n"
                       "  default_backend be\n"
                       "backend be\n"
                       "  server nginx 127.0.0.1:" +
                       std::to_string(backend) + "\n");
  auto p = peer_process::start(ns, {"haproxy", "-db", "-f", conf}, cpu, dir + "/haproxy.out");
  if (!wait_listening(ns, port))
    throw lab_error("haproxy did not listen on 127.0.0.1:" + std::to_string(port) + " (see " + dir +
                    "/haproxy.out)");
  return p;
}

peer_process start_proxy_sim(const lab::netns& ns, std::uint16_t port, std::uint16_t backend,
                             int cpu) {
  auto p = peer_process::fork_body(ns, cpu, [&ns, port, backend] {
    net::io_context io{1};
    scenario::proxy_spec spec;
    spec.mode = scenario::proxy_mode::userspace;
    proxy_sim::service_endpoints service;
    service.service = "bench/nginx:http";
    service.node_port = port;
    service.endpoints = {loopback(backend)};
    proxy_sim::userspace_proxier proxy(io, ns, spec, {service}, 1);
    proxy.start();
    io.run();
    return 0;
  });
  if (!wait_listening(ns, port))
    throw lab_error("proxy_sim did not listen on port " + std::to_string(port));
  return p;
}

wrk_result run_wrk(const lab::netns& ns, std::uint16_t port, int seconds, int cpu,
                   int connections) {
  auto e = exec_in(&ns,
                   {"wrk", "-t1", "-c" + std::to_string(connections),
                    "-d" + std::to_string(seconds) + "s", "--latency", "-H", "Connection: close",
                    "http://127.0.0.1:" + std::to_string(port) + "/"},
                   true, cpu, std::chrono::seconds(seconds + 30));
  wrk_result r;
  r.raw = e.out;
  r.cpu_ms = e.cpu_ms;
  std::smatch m;
  if (!std::regex_search(e.out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))")))
    throw lab_error("wrk printed no Requests/sec (exit " + std::to_string(e.exit_status) + "):\n" +
                    e.out);
  r.requests_per_s = std::stod(m[1]);
  if (std::regex_search(e.out, m, std::regex(R"((\d+) requests in)")))
    r.requests = std::stoull(m[1]);
  if (std::regex_search(e.out, m,
                        std::regex(R"(connect (\d+), read (\d+), write (\d+), timeout (\d+))")))
    r.socket_errors = std::stoull(m[1]) + std::stoull(m[2]) + std::stoull(m[3]) + std::stoull(m[4]);
  if (std::regex_search(e.out, m, std::regex(R"(Non-2xx or 3xx responses: (\d+))")))
    r.non_2xx = std::stoull(m[1]);
  if (std::regex_search(e.out, m, std::regex(R"(\n\s+99%\s+([0-9.]+)(us|ms|s|m)\b)")))
    r.p99_ms = wrk_duration_ms(m[1], m[2]);
  return r;
}

clients_run run_closed_loop(const lab::netns& ns, std::uint16_t port, std::uint32_t concurrency,
                            double seconds, int cpu) {
  pin_scope pin(cpu);
  net::io_context io{1};
  auto spec = http_spec("closed-loop");
  spec.arrival = scenario::arrival::closed;
  spec.concurrency = concurrency;
  auto run_start = clock::now();
  clients::client_group group(io, ns, spec, loopback(port), {}, 1, run_start);
  double cpu_before = thread_cpu_ms();
  group.start();
  io.run_for(std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds)));
  clients_run r;
  r.seconds = ms_since(run_start) / 1000.0;
  r.cpu_ms = thread_cpu_ms() - cpu_before;
  const auto& res = group.results();
  r.started = res.started;
  take_outcomes(res, r);
  group.abort();
  io.run_for(std::chrono::milliseconds(20));
  return r;
}

clients_run run_open_loop(const lab::netns& ns, std::uint16_t port, double rate, double seconds,
                          int cpu) {
  pin_scope pin(cpu);
  net::io_context io{1};
  auto spec = http_spec("open-loop");
  spec.arrival = scenario::arrival::constant;
  spec.rate_per_s = rate;
  spec.stop_ms = static_cast<std::uint32_t>(seconds * 1000);
  clients::group_options options;
  options.max_records = static_cast<std::size_t>(rate * seconds * 1.1) + 1000;
  auto run_start = clock::now();
  clients::client_group group(io, ns, spec, loopback(port), {}, 1, run_start, options);
  double cpu_before = thread_cpu_ms();
  group.start();
  auto window_end = run_start + std::chrono::milliseconds(*spec.stop_ms);
  io.run_until(window_end);
  clients_run r;
  r.cpu_ms = thread_cpu_ms() - cpu_before;
  // Stragglers: at most the response timeout.
  auto deadline = window_end + std::chrono::milliseconds(spec.response_timeout_ms + 500);
  while (!group.finished() && clock::now() < deadline)
    io.run_for(std::chrono::milliseconds(10));
  const auto& res = group.results();
  r.seconds = seconds;
  const auto end_ns = std::chrono::nanoseconds(std::chrono::milliseconds(*spec.stop_ms));
  for (const auto& rec : res.records)
    if (rec.started < end_ns) ++r.started;
  take_outcomes(res, r);
  group.abort();
  io.run_for(std::chrono::milliseconds(20));
  return r;
}

} // namespace backlog_lab::bench
