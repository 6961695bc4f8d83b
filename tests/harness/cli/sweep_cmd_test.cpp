// `backlog-lab sweep` for real: a 2-cell sweep on the kernel and its CSV, JSON, HTML (rendered
// in headless Chromium) and JUnit (checked against a JUnit XML schema); input errors before any
// cell runs; SIGINT to a child `backlog-lab sweep` mid-run.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "harness/cli/app.hpp"
#include "harness/lab/process.hpp"
#include "tests/harness/cli/chromium.hpp"
#include "tests/harness/cli/cli_runner.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

fs::path test_dir() {
  return scratch_dir();
}

// Two seconds or so: a burst of 60 connections in 30 ms (exactly 60: max_connections, so a late
// stop-clients on a loaded machine cannot add more; 61 once overflowed the large cell) against a
// userspace proxy that accepts one every ~30 ms (its first dial goes to a vanished pod). With
// somaxconn 8 the queue holds 9 and the rest of the burst is dropped; with 64 the whole burst fits
// (capacity 65).
const char* small_scenario = R"({
  "name": "sweep-small", "duration_ms": 1000, "drain_ms": 1500, "sample_interval_ms": 10,
  "sysctls": {"node": {"net.core.somaxconn": 8, "net.ipv4.tcp_abort_on_overflow": 0},
              "clients": {"net.ipv4.tcp_syn_linear_timeouts": 0}},
  "proxy": {"mode": "userspace", "backlog": -1, "dial_timeouts_ms": [30, 1000]},
  "services": [{"name": "default/web:http", "node_port": 30080, "endpoints": ["web", "gone"]}],
  "backends": [{"name": "web"}, {"name": "gone"}],
  "clients": [{"name": "burst", "target_service": "default/web:http", "rate_per_s": 2000,
               "max_connections": 60,
               "request_bytes": 100, "connect_timeout_ms": 1200, "response_timeout_ms": 500}],
  "timeline": [{"at_ms": 0, "action": "vanish", "target": "gone"},
               {"at_ms": 0, "action": "start-clients", "target": "burst"},
               {"at_ms": 30, "action": "stop-clients", "target": "burst"}],
  "expectations": [
    {"metric": "listener.node.30080.backlog", "op": "==", "value": 8,
     "description": "the backlog is somaxconn 8"},
    {"metric": "clients.burst.refused", "op": "==", "value": 0,
     "description": "a full queue refuses nothing"}]
})";

fs::path scenario_file() {
  fs::path p = test_dir() / "small.json";
  if (!fs::exists(p)) std::ofstream(p) << small_scenario;
  return p;
}

fs::path file(const std::string& name) {
  return test_dir() / name;
}

// The checks of one real sweep (2 cells x 1 repeat, every output written); a single test runs it
// once, since ctest starts a process per test case.
void check_table(const outcome& result) {
  // Cell 2 (somaxconn 64) breaks "backlog == 8": exit 1, and the table says 1/2 there.
  EXPECT_EQ(result.code, 1) << result.err;
  EXPECT_NE(result.out.find("FAIL: sweep-small, expectations failed in 1 of 2 cells (2)"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("somaxconn"), std::string::npos) << result.out;
  EXPECT_NE(result.err.find("sweep: cell 2/2 node:net.core.somaxconn=64"), std::string::npos)
      << "one progress line per cell when stderr is not a terminal\n"
      << result.err;
}

void check_json() {
  json j = json::parse(read_file(file("s.json")));
  EXPECT_EQ(j["seed"], 11);
  ASSERT_EQ(j["cells"].size(), 2u);
  const json& small = j["cells"][0]["metrics"];
  const json& large = j["cells"][1]["metrics"];
  EXPECT_EQ(j["cells"][0]["settings"]["node:net.core.somaxconn"], 8);
  // The listener's backlog is min(listen backlog, somaxconn): Go's -1 means somaxconn.
  EXPECT_EQ(small["listener.node.30080.backlog"]["mean"], 8);
  EXPECT_EQ(large["listener.node.30080.backlog"]["mean"], 64);
  // The queue holds backlog + 1, and only a full one drops SYNs. The drops prove it was full;
  // the 10 ms sampler may see it only after some accepts (a mean peak of 5.5 once, with a
  // build loading both cores), so the peak is only bounded by the capacity here.
  EXPECT_LE(small["listener.node.30080.accept_queue_peak"]["mean"].get<double>(), 9);
  EXPECT_GT(small["listener.node.30080.accept_queue_peak"]["mean"].get<double>(), 0);
  EXPECT_GT(small["counter.node.TcpExtListenOverflows"]["mean"].get<double>(), 0);
  EXPECT_GT(small["counter.clients.TcpExtTCPSynRetrans"]["mean"].get<double>(), 0);
  EXPECT_LE(large["listener.node.30080.accept_queue_peak"]["mean"].get<double>(), 60);
  EXPECT_EQ(large["counter.node.TcpExtListenOverflows"]["mean"], 0);
  EXPECT_TRUE(j["cells"][0]["expectations"]["passed"]);
  EXPECT_FALSE(j["cells"][1]["expectations"]["passed"]);
  EXPECT_EQ(j["cells"][1]["runs"][0]["failed"][0]["measured"], 64);
  EXPECT_EQ(j["cells"][0]["seeds"], j["cells"][1]["seeds"]) << "repeat r: one seed in all cells";
  // Every repeat counts in every cell's figures: n, the values, and mean/min/max of them.
  for (const auto& cell : j["cells"]) {
    ASSERT_EQ(cell["runs"].size(), 2u);
    for (const auto& [name, m] : cell["metrics"].items()) {
      SCOPED_TRACE("cell " + cell["cell"].dump() + " " + name);
      ASSERT_EQ(m["n"], 2);
      ASSERT_EQ(m["values"].size(), 2u);
      double a = m["values"][0].get<double>(), b = m["values"][1].get<double>();
      EXPECT_NEAR(m["mean"].get<double>(), (a + b) / 2, 1e-9 * (1 + std::fabs(a + b)));
      EXPECT_EQ(m["min"].get<double>(), std::min(a, b));
      EXPECT_EQ(m["max"].get<double>(), std::max(a, b));
    }
  }
}

void check_csv() {
  std::istringstream csv(read_file(file("s.csv")));
  std::string head, row1, row2, extra;
  std::getline(csv, head);
  std::getline(csv, row1);
  std::getline(csv, row2);
  EXPECT_FALSE(std::getline(csv, extra));
  auto split = [](const std::string& line) {
    std::vector<std::string> out;
    std::stringstream s(line);
    for (std::string f; std::getline(s, f, ',');)
      out.push_back(f);
    return out;
  };
  auto h = split(head), a = split(row1), b = split(row2);
  auto col = std::find(h.begin(), h.end(), "listener.node.30080.backlog.mean") - h.begin();
  ASSERT_LT(static_cast<size_t>(col), h.size()) << head;
  EXPECT_EQ(a.at(col), "8");
  EXPECT_EQ(b.at(col), "64");
  EXPECT_EQ(a.at(1), "8") << "the setting's own column";
}

void check_junit() {
  auto res = lab::run_command(
      nullptr, {"xmllint", "--noout", "--schema", BACKLOG_LAB_JUNIT_XSD, file("s.xml").string()});
  EXPECT_EQ(res.exit_status, 0) << res.err;
  std::string xml = read_file(file("s.xml"));
  EXPECT_NE(xml.find("sweep-small cell 1 [node:net.core.somaxconn=8] repeat 1"), std::string::npos);
  EXPECT_NE(xml.find("<failure message=\"measured 64, expected == 8\""), std::string::npos) << xml;
}

// Per svg.chart of the rendered page: [kind, width, height, marks drawn].
const char* chart_measure = R"(
const out = [];
for (const svg of document.querySelectorAll('svg.chart')) {
  const box = svg.getBoundingClientRect();
  let marks = 0;
  for (const m of svg.querySelectorAll('.mark')) {
    const b = m.getBBox();
    if (b.width > 0 || b.height > 0) marks++;
  }
  out.push([svg.dataset.kind, Math.round(box.width), Math.round(box.height), marks]);
})";

void check_html_in_chromium() {
  json charts = render_in_chromium(file("s.html"), chart_measure);
  std::map<std::string, int> kinds;
  for (const auto& c : charts) {
    std::string kind = c[0];
    ++kinds[kind];
    EXPECT_GT(c[1].get<int>(), 100) << kind << " has no width";
    EXPECT_GT(c[2].get<int>(), 50) << kind << " has no height";
    // Every chart draws something: queue lines, outcome bars, latency bars, the metric's bars;
    // drops only where there were drops (cell 1).
    if (kind != "drops") {
      EXPECT_GT(c[3].get<int>(), 0) << kind << " drew no marks";
    }
  }
  EXPECT_EQ(kinds["across-cells"], 1);
  EXPECT_EQ(kinds["accept-queue"], 2);
  EXPECT_EQ(kinds["drops"], 2);
  EXPECT_EQ(kinds["outcomes"], 2);
  EXPECT_EQ(kinds["connect-latency"], 2);
  int drops_drawn = 0;
  for (const auto& c : charts)
    if (c[0] == "drops") drops_drawn += c[3].get<int>() > 0;
  EXPECT_GE(drops_drawn, 1) << "cell 1 dropped SYNs: its drops chart has bars";
}

TEST(sweep_cmd, a_real_sweep_writes_every_output) {
  BACKLOG_LAB_REQUIRE_LAB();
  outcome result =
      run({"sweep", scenario_file().string(), "--set", "node:net.core.somaxconn=8,64", "--repeat",
           "2", "--seed", "11", "--csv", file("s.csv").string(), "--json", file("s.json").string(),
           "--html", file("s.html").string(), "--junit", file("s.xml").string()});
  {
    SCOPED_TRACE("terminal");
    check_table(result);
  }
  {
    SCOPED_TRACE("JSON");
    check_json();
  }
  {
    SCOPED_TRACE("CSV");
    check_csv();
  }
  std::string missing;
  if (lab::have_program("xmllint")) {
    SCOPED_TRACE("JUnit");
    check_junit();
  } else {
    missing += " xmllint (Debian libxml2-utils): JUnit schema check not done;";
  }
  if (lab::have_program("chromium")) {
    SCOPED_TRACE("HTML");
    check_html_in_chromium();
  } else {
    missing += " chromium (scripts/setup installs Debian's chromium): HTML not rendered;";
  }
  if (!missing.empty()) GTEST_SKIP() << "not installed:" << missing;
}

TEST(sweep_cmd, tuning_accept_queue_abort_on_overflow_resets_at_the_ack_not_at_the_syn) {
  BACKLOG_LAB_REQUIRE_LAB();
  // The shipped scenario at its defaults (cell 1) and with tcp_abort_on_overflow=1 (cell 2).
  auto r = run({"sweep", "tuning-accept-queue", "--set", "node:net.ipv4.tcp_abort_on_overflow=0,1",
                "--quiet", "--seed", "5", "--json", file("abort.json").string()});
  EXPECT_EQ(r.code, 1) << "cell 2 breaks the defaults' \"no embryonic resets\"\n" << r.out;
  json j = json::parse(read_file(file("abort.json")));
  ASSERT_EQ(j["cells"].size(), 2u);
  EXPECT_TRUE(j["cells"][0]["expectations"]["passed"]) << "every expectation holds at the defaults";
  auto metric = [&](int cell, const std::string& name) {
    return j["cells"][cell]["metrics"][name]["mean"].get<double>();
  };
  // docs/reference/kernel.md 4: only a final ACK to a full queue is reset (EmbryonicRsts); SYNs to
  // a full queue are dropped either way: they still overflow, are retransmitted, and are never
  // refused.
  EXPECT_EQ(metric(0, "counter.node.TcpExtEmbryonicRsts"), 0);
  EXPECT_GT(metric(1, "counter.node.TcpExtEmbryonicRsts"), 0);
  for (int cell : {0, 1}) {
    EXPECT_GT(metric(cell, "counter.node.TcpExtListenOverflows"), 0) << "cell " << cell + 1;
    EXPECT_GT(metric(cell, "counter.clients.TcpExtTCPSynRetrans"), 0) << "cell " << cell + 1;
    EXPECT_EQ(metric(cell, "clients.burst.refused_share"), 0) << "cell " << cell + 1;
  }
}

TEST(sweep_cmd, run_set_reruns_one_cell_and_its_junit_is_schema_valid) {
  BACKLOG_LAB_REQUIRE_LAB();
  fs::path xml = file("run.xml");
  auto r = run({"run", scenario_file().string(), "--set", "node:net.core.somaxconn=64", "--quiet",
                "--seed", "11", "--junit", xml.string()});
  EXPECT_EQ(r.code, 1) << "backlog 64 breaks the expectation, as in the sweep's cell 2\n" << r.out;
  EXPECT_NE(r.out.find("measured 64"), std::string::npos) << r.out;
  if (!lab::have_program("xmllint")) GTEST_SKIP() << "xmllint (Debian libxml2-utils) not installed";
  auto res = lab::run_command(
      nullptr, {"xmllint", "--noout", "--schema", BACKLOG_LAB_JUNIT_XSD, xml.string()});
  EXPECT_EQ(res.exit_status, 0) << res.err;
}

TEST(sweep_cmd, bad_set_is_exit_2_naming_the_set_and_path_before_any_cell) {
  fs::path json_out = test_dir() / "never.json";
  fs::remove(json_out);
  struct bad {
    std::string set;
    std::string path;
  };
  for (const auto& b : {bad{"nodes:net.core.somaxconn=8", "/sysctls/nodes"},
                        bad{"/clients/0/rate_per_s=10,fast", "/clients/0/rate_per_s"},
                        bad{"/clients/5/rate_per_s=10", "/clients/5"},
                        bad{"/proxy/backlogg=10", "/proxy/backlogg"}}) {
    auto r = run({"sweep", scenario_file().string(), "--set", "node:net.core.somaxconn=8,64",
                  "--set", b.set, "--json", json_out.string()});
    EXPECT_EQ(r.code, 2) << b.set;
    EXPECT_NE(r.err.find("--set "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(b.path), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("sweep: cell"), std::string::npos) << "no cell may run: " << r.err;
    EXPECT_FALSE(fs::exists(json_out)) << "no output is written for bad input";
  }
  EXPECT_EQ(run({"sweep", scenario_file().string(), "--repeat", "0"}).code, 2);
  EXPECT_EQ(run({"sweep"}).code, 2) << "the scenario is required";
}

// The network namespaces `pid` holds (fds and threads), other than this process's own.
std::set<unsigned long> namespaces_of(pid_t pid) {
  std::set<unsigned long> out;
  std::error_code ec;
  struct stat own {};
  ::stat("/proc/self/ns/net", &own);
  for (const char* sub : {"fd", "task"}) {
    for (const auto& e :
         fs::directory_iterator(fs::path("/proc") / std::to_string(pid) / sub, ec)) {
      fs::path link = std::string(sub) == "fd" ? e.path() : e.path() / "ns" / "net";
      std::string target = fs::read_symlink(link, ec).string();
      if (ec || target.rfind("net:[", 0) != 0) continue;
      unsigned long inode = std::stoul(target.substr(5));
      if (inode != own.st_ino) out.insert(inode);
    }
  }
  return out;
}

TEST(sweep_cmd, sigint_mid_sweep_is_exit_130_with_finished_cells_written_and_no_lab_left) {
  BACKLOG_LAB_REQUIRE_LAB();
  fs::path d = test_dir() / "sigint";
  fs::remove_all(d);
  fs::create_directories(d);
  std::string scenario = scenario_file().string();
  std::string err_path = (d / "stderr").string();
  std::string out_path = (d / "stdout").string();
  std::vector<std::string> args = {BACKLOG_LAB_BINARY,
                                   "sweep",
                                   scenario,
                                   "--set",
                                   "node:net.core.somaxconn=8,16,32,64",
                                   "--json",
                                   (d / "s.json").string(),
                                   "--csv",
                                   (d / "s.csv").string(),
                                   "--junit",
                                   (d / "s.xml").string()};
  auto child = spawn_binary(args, out_path, err_path);
  // Cell 1 is done once cell 2 is announced; wait until cell 2's lab exists, then interrupt.
  ASSERT_TRUE(testing::eventually(
      [&] { return read_file(err_path).find("sweep: cell 2/4") != std::string::npos; },
      std::chrono::seconds(30)))
      << read_file(err_path);
  std::set<unsigned long> held;
  ASSERT_TRUE(testing::eventually(
      [&] {
        held = namespaces_of(child.pid());
        return held.size() >= 3; // clients, node and a pod
      },
      std::chrono::seconds(10)));
  // Into the run's timeline: a stop asked for before the runner's first sample crashes it
  // (runner.cpp finish() cancels end_timer_ before play() creates it; reported).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  child.signal(SIGINT);
  EXPECT_EQ(child.wait_for(std::chrono::seconds(30)), 130) << read_file(err_path);

  json j = json::parse(read_file(d / "s.json"));
  EXPECT_TRUE(j["interrupted"]);
  EXPECT_GE(j["cells_finished"].get<int>(), 1);
  EXPECT_LT(j["cells_finished"].get<int>(), 4);
  EXPECT_EQ(j["cells"][0]["metrics"]["listener.node.30080.backlog"]["mean"], 8);
  std::string csv = read_file(d / "s.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), j["cells_finished"].get<int>() + 1) << csv;
  EXPECT_NE(read_file(d / "s.xml").find("type=\"interrupted\""), std::string::npos);
  EXPECT_NE(read_file(out_path).find("INTERRUPTED: sweep-small"), std::string::npos)
      << read_file(out_path);
  // Nothing of the interrupted cell's lab is left anywhere on the system.
  EXPECT_TRUE(testing::eventually([&] { return testing::holders_of(held).empty(); }))
      << testing::lines(testing::holders_of(held));
}

} // namespace
} // namespace backlog_lab::cli
