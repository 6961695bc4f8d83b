// Real programs in the lab (docs/your-software.md): the shipped exec scenarios fail when the
// program gets a broken configuration (tests/scenarios/shipped_test.cpp runs them as shipped); a
// program that cannot start stops the run with its JSON path, command and stderr, leaving nothing.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/lab/link.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/program.hpp"
#include "harness/runner/runner.hpp"
#include "harness/scenario/reader.hpp"
#include "tests/support/nginx.hpp"
#include "tests/support/run_checks.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::runner {
namespace {

#define REQUIRE_PROGRAMS(...)                                                                      \
  do {                                                                                             \
    BACKLOG_LAB_REQUIRE_LAB();                                                                     \
    for (const char* p : {__VA_ARGS__})                                                            \
      if (!lab::have_program(p))                                                                   \
        GTEST_SKIP() << p << " not installed (scripts/setup installs it)";                         \
  } while (0)

using testing::expectation_passed;
using testing::failures;

using testing::metric;

// Replaces the config line of `exec` that contains `needle` with `line`.
void replace_line(scenario::exec_spec& exec, const std::string& needle, const std::string& line) {
  for (auto& l : exec.config)
    if (l.find(needle) != std::string::npos) {
      l = line;
      return;
    }
  FAIL() << "no config line with " << needle;
}

// The program directories this process made (exec_actor names them by pid: other tests running
// beside this one make and remove their own).
size_t tmp_dirs() {
  const std::string ours = "backlog-lab." + std::to_string(::getpid()) + ".";
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/tmp"))
    n += e.path().filename().string().rfind(ours, 0) == 0;
  return n;
}

TEST(exec, nginx_front_expectations_fail_when_nginx_keeps_upstreams_open) {
  REQUIRE_PROGRAMS("nginx");
  auto s = scenario::load_scenario("incident-2018-03-nginx-front");
  // Broken: nginx waits 60 s for the held NodePort and ignores its clients giving up, so it
  // never sends its FIN within the run: the queue holds ESTAB children, not CLOSE-WAIT.
  replace_line(s.clients[0].exec, "proxy_read_timeout",
               "      proxy_connect_timeout 3s; proxy_read_timeout 60s; proxy_next_upstream off; "
               "proxy_ignore_client_abort on;");
  run_result r = run_scenario(s);
  EXPECT_FALSE(r.passed());
  EXPECT_FALSE(expectation_passed(r, "listener.node.30720.close_wait_unaccepted"));
  EXPECT_FALSE(expectation_passed(r, "listener.node.30720.recvq_is_request_plus_fin_share"));
}

TEST(exec, haproxy_frozen_backend_fails_when_haproxy_is_configured_otherwise) {
  REQUIRE_PROGRAMS("haproxy", "socat");
  // The scenario as shipped passes (tests/scenarios/shipped_test.cpp).
  auto s = scenario::load_scenario("haproxy-frozen-backend");
  // Broken: no retries, and a maxconn below what the frozen pod holds: nothing is retried and
  // the frontend can never reach 20 sessions. (A maxconn far above the load made smax depend on
  // the timing of the run: it passed <= 24 on a slow machine, CI exit 8.)
  replace_line(s.proxy->exec, "retries", "  retries 0");
  replace_line(s.proxy->exec, "maxconn", "  maxconn 8");
  run_result broken = run_scenario(s);
  EXPECT_FALSE(broken.passed());
  EXPECT_FALSE(expectation_passed(broken, "program.proxy.pods.web-1.wredis"));
  EXPECT_FALSE(expectation_passed(broken, "program.proxy.web.FRONTEND.smax"));
  // Broken the other way: no maxconn to speak of, so haproxy accepts the whole burst and its own
  // listen queue never fills.
  s = scenario::load_scenario("haproxy-frozen-backend");
  replace_line(s.proxy->exec, "maxconn", "  maxconn 2000");
  run_result unbounded = run_scenario(s);
  EXPECT_FALSE(expectation_passed(unbounded, "listener.node.30080.accept_queue_peak"));
  EXPECT_FALSE(expectation_passed(unbounded, "listener.node.30080.drops"));
}

// nginx as the node's proxy: set-endpoints re-renders its upstream and runs the scenario's
// reload command; traffic moves to the new endpoint only if the reload really took effect.
scenario::scenario nginx_proxy_reload_scenario() {
  return scenario::parse_scenario(R"({
    "name": "nginx-proxy-reload", "duration_ms": 3000, "drain_ms": 1000,
    "proxy": {"mode": "exec", "exec": {
      "argv": ["nginx", "-p", "{{dir}}", "-c", "{{config}}"],
      "reload": {"command": ["nginx", "-p", "{{dir}}", "-c", "{{config}}", "-s", "reload"]},
      "config": [
        "daemon off; master_process on; worker_processes 1; pid {{dir}}/nginx.pid;",
        "error_log stderr warn; events { worker_connections 256; }",
        "http { access_log off; client_body_temp_path {{dir}}/body; proxy_temp_path {{dir}}/proxy;",
        "  upstream pods {",
        "{{#service.web.endpoints}}",
        "    server {{address}}:{{port}};",
        "{{/service.web.endpoints}}",
        "  }",
        "  server { listen {{node_address}}:{{service.web.node_port}} backlog=64;",
        "    location / { proxy_pass http://pods; } } }"]}},
    "services": [{"name": "web", "node_port": 30080, "port": 80, "endpoints": ["web-0"]}],
    "backends": [{"name": "web-0", "kind": "http", "port": 8080},
                 {"name": "web-1", "kind": "http", "port": 8080}],
    "clients": [{"name": "users", "target_service": "web", "rate_per_s": 40,
                 "request_bytes": 200, "stop_ms": 2500}],
    "timeline": [{"at_ms": 1000, "action": "set-endpoints", "target": "web",
                  "endpoints": ["web-1"]}]})",
                                  "nginx-proxy-reload.json");
}

TEST(exec, a_reload_applies_the_new_endpoints) {
  REQUIRE_PROGRAMS("nginx");
  auto s = nginx_proxy_reload_scenario();
  run_result r = run_scenario(s);
  EXPECT_EQ(metric(r, "program.proxy.reloads"), 1) << failures(r);
  EXPECT_EQ(metric(r, "program.proxy.running"), 1) << failures(r);
  // About 40 requests before the reload and 60 after; both pods served theirs.
  EXPECT_GT(metric(r, "backend.web-0.requests_served"), 10);
  EXPECT_GT(metric(r, "backend.web-1.requests_served"), 10);
  // A graceful reload loses nothing, and the reloaded listener keeps its configured backlog.
  EXPECT_EQ(r.clients.at("users").counts[clients::outcome::answered],
            r.clients.at("users").started);
  EXPECT_EQ(metric(r, "listener.node.30080.backlog"), 64);

  // Broken: a reload command that does not reload. The re-rendered config is never read, so the
  // new endpoint gets nothing: what a user's "config not applied after reload" looks like.
  s.proxy->exec.reload.command = {"true"};
  run_result broken = run_scenario(s);
  EXPECT_EQ(metric(broken, "program.proxy.reloads"), 1);
  EXPECT_EQ(metric(broken, "backend.web-1.requests_served"), 0);
}

std::string start_error(const std::string& argv, const std::string& config = "") {
  std::string text =
      R"({"name": "bad", "duration_ms": 500, "backends": [{"name": "p", "kind": "exec",
    "port": 8080, "exec": {"ready_timeout_ms": 700, "argv": )" +
      argv + (config.empty() ? "" : R"(, "config": )" + config) + "}}]}";
  auto s = scenario::parse_scenario(text, "bad.json");
  try {
    run_scenario(s);
  } catch (const lab_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(exec, programs_that_cannot_start_stop_the_run_clearly) {
  BACKLOG_LAB_REQUIRE_LAB();
  size_t before = tmp_dirs();
  auto missing = start_error(R"(["no-such-server-xyz", "--port", "{{port}}"])");
  EXPECT_NE(missing.find("bad.json: /backends/0/exec/argv"), std::string::npos) << missing;
  EXPECT_NE(missing.find("no-such-server-xyz --port 8080"), std::string::npos) << missing;

  auto early = start_error(R"(["sh", "-c", "echo 'config line 7: bad' >&2; exit 4"])");
  EXPECT_NE(early.find("bad.json: /backends/0/exec"), std::string::npos) << early;
  EXPECT_NE(early.find("exited (code 4) before accepting on 203.0.113.10:8080"), std::string::npos)
      << early;
  EXPECT_NE(early.find("config line 7: bad"), std::string::npos) << early;

  auto slow = start_error(R"(["sleep", "30"])");
  EXPECT_NE(slow.find("did not accept on 203.0.113.10:8080 within 700 ms"), std::string::npos)
      << slow;
  if (lab::have_program("nginx")) {
    auto nginx = start_error(R"(["nginx", "-p", "{{dir}}", "-c", "{{config}}"])",
                             R"(["daemon off; error_log stderr;", "events {}", "htp {}"])");
    EXPECT_NE(nginx.find("unknown directive \"htp\""), std::string::npos) << nginx;
  }
  EXPECT_EQ(tmp_dirs(), before) << "every program's directory is removed";
}

TEST(exec, faults_a_program_cannot_take_and_unknown_placeholders_are_refused_when_read) {
  auto read = [](const std::string& backend, const std::string& timeline) {
    std::string text = R"({"name": "x", "duration_ms": 500, "backends": [)" + backend +
                       R"(], "timeline": [)" + timeline + "]}";
    try {
      scenario::parse_scenario(text, "x.json");
    } catch (const input_error& e) {
      return e.where() + " " + e.expected();
    }
    return std::string("(accepted)");
  };
  std::string good = R"({"name": "p", "kind": "exec", "exec": {"argv": ["srv", "{{port}}"]}})";
  EXPECT_EQ(read(good, R"({"at_ms": 1, "action": "freeze", "target": "p"})"), "(accepted)");
  auto refused = read(good, R"({"at_ms": 1, "action": "close-listener", "target": "p"})");
  EXPECT_EQ(refused.rfind("x.json: /timeline/0/action", 0), 0u) << refused;
  auto typo = read(R"({"name": "p", "kind": "exec", "exec": {"argv": ["srv", "{{prot}}"]}})", "");
  EXPECT_EQ(typo.rfind("x.json: /backends/0/exec/argv/1", 0), 0u) << typo;
  EXPECT_NE(typo.find("{{prot}}"), std::string::npos) << typo;
  auto noexec = read(R"({"name": "p", "kind": "exec"})", "");
  EXPECT_EQ(noexec.rfind("x.json: /backends/0/exec", 0), 0u) << noexec;
}

TEST(exec, outside_targets_need_allow_external) {
  BACKLOG_LAB_REQUIRE_LAB();
  // Never contacted: the run is refused before any client starts.
  auto s = scenario::parse_scenario(
      R"({"name": "ext", "duration_ms": 300,
          "clients": [{"name": "c", "target": "100.64.0.1:80", "rate_per_s": 1}]})",
      "ext.json");
  try {
    run_scenario(s);
    FAIL() << "expected input_error";
  } catch (const input_error& e) {
    EXPECT_EQ(e.where(), "ext.json: /clients/0/target");
    EXPECT_NE(e.expected().find("--allow-external"), std::string::npos) << e.expected();
  }
}

TEST(exec, outside_targets_are_dialled_from_the_host) {
  REQUIRE_PROGRAMS("nginx");
  // The "host" and the "real target" are namespaces this test makes, joined by a veth pair:
  // backlog-lab runs in the first as it would on a user's lab VM, nginx in the second as on a
  // real node. Nothing leaves this machine; 100.64.0.0/30 (shared address space, RFC 6598) is
  // outside the lab's networks.
  auto host = lab::netns::create("outside-host");
  auto node = lab::netns::create("outside-node");
  lab::create_veth(host, "to-node", node, "eth0");
  lab::add_address(host, "to-node", "100.64.0.1/30");
  lab::add_address(node, "eth0", "100.64.0.2/30");
  lab::set_link_up(host, "to-node");
  lab::set_link_up(node, "eth0");
  // A relative log path is taken from nginx's prefix.
  const std::filesystem::path dir =
      testing::nginx_test_prefix("bl-outside", {.workers = 1,
                                                .worker_connections = 256,
                                                .listen = "100.64.0.2:8080",
                                                .peer_log = "peers.log"});
  const auto peer_log = dir / "peers.log";
  struct removed_at_end {
    std::filesystem::path dir;
    ~removed_at_end() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  auto s = scenario::parse_scenario(
      R"({"name": "outside", "duration_ms": 1200, "drain_ms": 1000,
          "clients": [{"name": "users", "target": "100.64.0.2:8080", "rate_per_s": 40,
                       "request_bytes": 120, "stop_ms": 1000}]})",
      "outside.json");
  run_result r;
  {
    lab::program nginx = lab::program::start(
        &node,
        {"nginx", {"nginx", "-p", dir.string(), "-c", (dir / "nginx.conf").string()}, {}, {}, {}});
    ASSERT_EQ(lab::wait_until_accepting(nginx, node, "100.64.0.2", 8080, std::chrono::seconds(5)),
              lab::readiness::ready)
        << nginx.last_lines(true);
    lab::netns_scope in(host);
    r = run_scenario(s, {.allow_external = true});
  }
  ASSERT_TRUE(r.clients.count("users"));
  const auto& c = r.clients.at("users");
  EXPECT_EQ(r.external_clients, std::set<std::string>{"users"});
  EXPECT_GE(c.started, 20u);
  EXPECT_EQ(c.counts[clients::outcome::answered], c.started) << failures(r);
  // nginx's own log: one line per request, each from the host's address, none from the lab's.
  std::ifstream log(peer_log);
  std::string line;
  std::uint64_t lines = 0, from_host = 0;
  while (std::getline(log, line)) {
    ++lines;
    from_host += line == "100.64.0.1";
  }
  EXPECT_EQ(from_host, c.counts[clients::outcome::answered]);
  EXPECT_EQ(lines, from_host); // wait_until_accepting's probe sends no request: nginx logs none
  // The lab's clients namespace held none of these connections: the run reports their side only.
  for (const auto& sock : r.census.at("clients").sockets)
    EXPECT_NE(sock.remote.port, 8080);
}

} // namespace
} // namespace backlog_lab::runner
