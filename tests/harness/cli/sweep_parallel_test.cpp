// `sweep --jobs N` and `sweep --shard I/N` + `merge` for real: the same cells measured serially,
// side by side, and as shards in separate processes agree where the kernel's figures are
// deterministic, and the merged shards give the reports of one sweep.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "harness/lab/process.hpp"
#include "tests/harness/cli/cli_runner.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// A frozen pod (it never accepts) and exactly 20 connections, one every 5 ms, whose connect
// timeout (600 ms) ends before the first SYN retransmission (1 s): the accept queue holds
// backlog + 1 and every other connection's only SYN is dropped. Nothing here depends on timing
// but the order of events, so serial, parallel and sharded runs must agree.
const char* frozen_scenario = R"({
  "name": "sweep-frozen", "duration_ms": 300, "drain_ms": 700, "sample_interval_ms": 10,
  "backends": [{"name": "p", "backlog": 4}],
  "clients": [{"name": "c", "target": "203.0.113.10:8080", "rate_per_s": 200,
               "max_connections": 20, "connect_timeout_ms": 600, "response_timeout_ms": 300}],
  "timeline": [{"at_ms": 0, "action": "freeze", "target": "p"},
               {"at_ms": 20, "action": "start-clients", "target": "c"}],
  "expectations": [
    {"metric": "clients.c.answered", "op": "==", "value": 0,
     "description": "a frozen pod answers nothing"}]
})";

// Deterministic per run: the queue's peak, connections started and how many got no answer.
const std::vector<std::string> exact = {"listener.p.8080.accept_queue_peak",
                                        "listener.p.8080.backlog", "clients.c.started",
                                        "clients.c.answered", "clients.c.refused"};

std::string scenario_path() {
  static std::string p = write_file("frozen.json", frozen_scenario);
  return p;
}

std::vector<std::string> sweep_args(const std::string& json_path) {
  std::vector<std::string> a = {
      "sweep", scenario_path(), "--set",  "/backends/0/backlog=4,8", "--repeat", "2", "--seed",
      "7",     "--json",        json_path};
  for (const auto& m : exact)
    a.insert(a.end(), {"--metric", m});
  a.insert(a.end(), {"--metric", "clients.c.syn_unanswered"});
  return a;
}

// Every key path of a JSON document (array elements merged), for "the same structure".
void shape(const json& j, const std::string& at, std::set<std::string>& out) {
  out.insert(at + ":" + j.type_name());
  if (j.is_object())
    for (const auto& [k, v] : j.items())
      shape(v, at + "/" + k, out);
  else if (j.is_array())
    for (const auto& v : j)
      shape(v, at + "/*", out);
}

// The shape of a sweep report; warnings (parallel.notes) may be empty in one and not the other.
std::set<std::string> shape(const json& j) {
  std::set<std::string> s;
  shape(j, "", s);
  s.erase("/parallel/notes/*:string");
  return s;
}

// The per-run figures that must not depend on how the runs were spread.
void expect_same_cells(const json& a, const json& b, const std::string& what) {
  ASSERT_EQ(a["cells"].size(), b["cells"].size()) << what;
  for (std::size_t i = 0; i < a["cells"].size(); ++i) {
    const auto &x = a["cells"][i], &y = b["cells"][i];
    EXPECT_EQ(x["cell"], y["cell"]) << what;
    EXPECT_EQ(x["settings"], y["settings"]) << what;
    EXPECT_EQ(x["seeds"], y["seeds"]) << what;
    EXPECT_EQ(x["expectations"], y["expectations"]) << what << " cell " << x["cell"];
    for (const auto& m : exact)
      EXPECT_EQ(x["metrics"][m]["values"], y["metrics"][m]["values"])
          << what << " cell " << x["cell"] << " " << m;
    // Each connection either got into the queue (and no answer) or lost its only SYN.
    for (std::size_t r = 0; r < x["runs"].size(); ++r) {
      const auto& m = y["runs"][r]["metrics"];
      EXPECT_EQ(
          m["clients.c.unanswered"].get<double>() + m["clients.c.syn_unanswered"].get<double>(), 20)
          << what;
      EXPECT_EQ(m["clients.c.unanswered"], x["runs"][r]["metrics"]["clients.c.unanswered"])
          << what << " cell " << x["cell"] << " run " << r;
    }
  }
}

json read_json(const fs::path& p) {
  return json::parse(read_file(p.string()));
}

TEST(sweep_parallel, jobs_give_the_serial_figures_and_report_interference) {
  BACKLOG_LAB_REQUIRE_LAB();
  fs::path serial = scratch_dir() / "serial.json", parallel = scratch_dir() / "parallel.json";
  auto s = run(sweep_args(serial.string()));
  ASSERT_EQ(s.code, 0) << s.err << s.out;
  auto args = sweep_args(parallel.string());
  args.insert(args.end(), {"--jobs", "3"});
  auto p = run(args);
  ASSERT_EQ(p.code, 0) << p.err << p.out;
  json a = read_json(serial), b = read_json(parallel);
  EXPECT_EQ(a["parallel"]["jobs"], 1);
  EXPECT_EQ(b["parallel"]["jobs"], 3);
  expect_same_cells(a, b, "serial vs --jobs 3");
  EXPECT_EQ(shape(a), shape(b));
  // The interference report: measured CPU time and start lag per run, a summary line.
  for (const auto& c : b["cells"])
    for (const auto& r : c["runs"]) {
      EXPECT_GT(r["cpu_ms"].get<double>(), 0);
      EXPECT_GE(r["start_lag_ms"].get<double>(), 0);
      EXPECT_GT(r["wall_ms"].get<double>(), r["run_ms"].get<double>());
    }
  EXPECT_NE(p.out.find("runs: 3 at a time on"), std::string::npos) << p.out;
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 3) {
    EXPECT_NE(p.err.find("warning: --jobs 3 exceeds the"), std::string::npos) << p.err;
  }
}

// Starts `backlog-lab ARGS` as a process of its own; stdout and stderr to one file.
lab::child_process start(std::vector<std::string> args, const fs::path& log) {
  args.insert(args.begin(), BACKLOG_LAB_BINARY);
  return spawn_binary(args, log.string(), log.string());
}

TEST(sweep_parallel, shards_as_processes_merge_into_the_unsharded_sweep) {
  BACKLOG_LAB_REQUIRE_LAB();
  fs::path whole = scratch_dir() / "whole.json";
  auto w = run(sweep_args(whole.string()));
  ASSERT_EQ(w.code, 0) << w.err << w.out;
  // 2 cells x 2 repeats over 3 shards: runs 0,3 / 1 / 2, so shards split cells between them.
  std::vector<lab::child_process> shards;
  std::vector<std::string> files;
  for (int i = 1; i <= 3; ++i) {
    fs::path f = scratch_dir() / ("shard" + std::to_string(i) + ".json");
    files.push_back(f.string());
    auto args = sweep_args(f.string());
    args.insert(args.end(), {"--shard", std::to_string(i) + "/3"});
    shards.push_back(start(args, scratch_dir() / ("shard" + std::to_string(i) + ".log")));
  }
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(shards[i].wait_for(std::chrono::seconds(120)), 0)
        << read_file((scratch_dir() / ("shard" + std::to_string(i + 1) + ".log")).string());
  json s2 = read_json(files[1]);
  EXPECT_EQ(s2["shard"], json({{"index", 2}, {"count", 3}}));
  EXPECT_EQ(s2["runs_planned"], 1);
  ASSERT_EQ(s2["cells"].size(), 1);
  EXPECT_EQ(s2["cells"][0]["runs"][0]["repeat"], 2) << "run 1 is cell 1's repeat 2";
  EXPECT_EQ(s2["cells"][0]["seeds"][0], read_json(whole)["cells"][0]["seeds"][1])
      << "a shard's run keeps the seed it has in the unsharded sweep";

  fs::path merged = scratch_dir() / "merged.json", csv = scratch_dir() / "merged.csv",
           html = scratch_dir() / "merged.html", junit = scratch_dir() / "merged.xml";
  std::vector<std::string> margs = {"merge",  files[2],        files[0],  files[1],
                                    "--json", merged.string(), "--csv",   csv.string(),
                                    "--html", html.string(),   "--junit", junit.string()};
  auto m = run(margs);
  ASSERT_EQ(m.code, 0) << m.err << m.out;
  json a = read_json(whole), b = read_json(merged);
  expect_same_cells(a, b, "unsharded vs merged shards");
  EXPECT_EQ(shape(a), shape(b));
  for (const char* key : {"scenario", "source", "seed", "repeat", "axes", "metrics",
                          "cells_planned", "cells_finished", "runs_planned", "passed"})
    EXPECT_EQ(a[key], b[key]) << key;
  EXPECT_EQ(b["shard"], json({{"index", 1}, {"count", 1}}));
  // The table and the other reports of one sweep.
  EXPECT_NE(m.out.find("PASS: sweep-frozen, every expectation held in all 2 cells"),
            std::string::npos)
      << m.out;
  std::string c = read_file(csv.string());
  EXPECT_EQ(std::count(c.begin(), c.end(), '\n'), 3) << c;
  std::string x = read_file(junit.string());
  std::size_t suites = 0;
  for (auto at = x.find("<testsuite "); at != std::string::npos; at = x.find("<testsuite ", at + 1))
    ++suites;
  EXPECT_EQ(suites, 4u) << x;
  EXPECT_NE(read_file(html.string()).find("data-kind=\"accept-queue\""), std::string::npos);

  // A missing or repeated shard is bad input, named.
  auto missing = run({"merge", files[0], files[1]});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("missing: 3"), std::string::npos) << missing.err;
  auto twice = run({"merge", files[0], files[0], files[1]});
  EXPECT_EQ(twice.code, 2);
  EXPECT_NE(twice.err.find("/shard/index"), std::string::npos) << twice.err;
}

TEST(sweep_parallel, merge_of_run_reports_sums_histograms_bin_by_bin) {
  BACKLOG_LAB_REQUIRE_LAB();
  std::vector<std::string> files;
  for (const char* seed : {"1", "2"}) {
    files.push_back((scratch_dir() / ("run" + std::string(seed) + ".json")).string());
    auto r = run({"run", scenario_path(), "-q", "--seed", seed, "--json", files.back()});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  fs::path merged = scratch_dir() / "runs.json";
  auto m = run({"merge", files[0], files[1], "--json", merged.string()});
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_NE(m.out.find("2 run reports merged"), std::string::npos) << m.out;
  json a = read_json(files[0]), b = read_json(files[1]), c = read_json(merged);
  const json &x = a["clients"]["c"], &y = b["clients"]["c"], &z = c["clients"]["c"];
  EXPECT_EQ(z["reports"], 2);
  EXPECT_EQ(z["started"], 40);
  for (const auto& [kind, n] : z["outcomes"].items())
    EXPECT_EQ(n, x["outcomes"][kind].get<int>() + y["outcomes"][kind].get<int>()) << kind;
  // Bin by bin: each merged bucket holds the two reports' counts of that bin.
  std::map<double, std::uint64_t> sum;
  for (const auto* h : {&x, &y})
    for (const auto& bucket : (*h)["connect_latency"]["buckets"])
      sum[bucket["from_ms"].get<double>()] += bucket["count"].get<std::uint64_t>();
  std::map<double, std::uint64_t> got;
  for (const auto& bucket : z["connect_latency"]["buckets"])
    got[bucket["from_ms"].get<double>()] = bucket["count"].get<std::uint64_t>();
  EXPECT_EQ(got, sum);
  EXPECT_EQ(z["connect_latency"]["count"],
            x["connect_latency"]["count"].get<int>() + y["connect_latency"]["count"].get<int>());
  EXPECT_EQ(z["connect_latency"]["min_ms"], std::min(x["connect_latency"]["min_ms"].get<double>(),
                                                     y["connect_latency"]["min_ms"].get<double>()));
  EXPECT_EQ(z["connect_latency"]["max_ms"], std::max(x["connect_latency"]["max_ms"].get<double>(),
                                                     y["connect_latency"]["max_ms"].get<double>()));
  // A sweep report and a run report are not one kind of thing.
  auto mixed = run({"merge", files[0], scenario_path()});
  EXPECT_EQ(mixed.code, 2) << mixed.err;
}

TEST(sweep_parallel, bad_shard_and_jobs_are_exit_2_before_any_run) {
  for (const char* bad : {"0/3", "4/3", "3", "a/b", "1/0", "1/3x"}) {
    auto r = run({"sweep", scenario_path(), "--shard", bad});
    EXPECT_EQ(r.code, 2) << bad;
    EXPECT_NE(r.err.find("--shard"), std::string::npos) << r.err;
  }
  EXPECT_EQ(run({"sweep", scenario_path(), "--jobs", "0"}).code, 2);
}

} // namespace
} // namespace backlog_lab::cli
