// The sweep's reports from a hand-made result: numbers land in the right columns, the JUnit is
// schema-valid, the HTML has a chart of each kind per cell.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/sweep/report.hpp"

namespace backlog_lab::sweep {
namespace {

using json = nlohmann::json;

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1))
    ++n;
  return n;
}

runner::run_result make_run(const scenario::scenario& s, double overflows, bool expectation_holds) {
  runner::run_result r;
  r.scenario = s;
  r.seed = 7;
  r.kernel = "6.18.test";
  r.run_ms = 3000;
  r.metrics = {{"counter.node.TcpExtListenOverflows", overflows},
               {"clients.burst.answered_share", 0.75},
               {"clients.burst.syn_unanswered_share", 0.25},
               {"clients.burst.connect_ms.p50", 1010},
               {"clients.burst.connect_ms.p90", 1020},
               {"clients.burst.connect_ms.p99", 3050},
               {"clients.burst.connect_ms.max", 3060}};
  runner::listener_track t;
  t.role = "node";
  t.port = 30080;
  t.backlog = 8;
  t.peak = 9;
  t.samples = {{0, 0}, {100, 9}, {900, 3}, {1500, 9}, {2500, 0}};
  r.listeners.push_back(t);
  for (int i = 0; i <= 30; ++i)
    r.node_counter_samples.push_back({i * 100.0, {{"TcpExtListenDrops", i < 5 ? i * 10 : 50}}});
  expect::expectation_result e;
  e.spec.metric = "counter.node.TcpExtListenOverflows";
  e.spec.op = scenario::compare_op::lt;
  e.spec.value = 100;
  e.spec.description = "few <drops> & \"resets\"";
  e.measured = overflows;
  e.expected = 100;
  e.passed = expectation_holds;
  r.expectations = {e};
  return r;
}

sweep_result make_result() {
  scenario::scenario s;
  s.name = "tiny";
  s.source = "tiny.json";
  scenario::client_group_spec g;
  g.name = "burst";
  s.clients.push_back(g);
  sweep_result r;
  r.scenario = "tiny";
  r.source = "tiny.json";
  r.kernel = "6.18.test";
  r.seed = 42;
  r.repeat = 2;
  r.axes.push_back(scenario::parse_set("node:net.core.somaxconn=8,64"));
  r.metrics = {"counter.node.TcpExtListenOverflows", "clients.burst.answered_share"};
  r.cells_planned = 2;
  r.runs_planned = 4;
  for (std::size_t i = 0; i < 2; ++i) {
    cell_result c;
    c.settings.index = i;
    c.settings.settings = {{"node:net.core.somaxconn", i == 0 ? 8 : 64}};
    c.settings.scenario = s;
    for (std::size_t k = 0; k < 2; ++k) {
      c.runs.push_back(make_run(s, i == 0 ? 40.0 + 20 * k : 400, i == 0));
      c.seeds.push_back(repeat_seed(42, k));
      c.info.push_back({k, 3100, 120.5, 1.25});
      c.expectations_held += i == 0;
      c.expectations_total += 1;
    }
    for (const auto& m : r.metrics) {
      std::vector<double> v;
      for (const auto& run : c.runs)
        v.push_back(run.metrics.at(m));
      c.metrics[m] = summarise(v);
    }
    r.cells.push_back(std::move(c));
  }
  return r;
}

// What merge and --jobs rely on: a run's JSON record read back gives what the reports read.
TEST(sweep_report, a_run_record_reads_back_as_it_was_written) {
  sweep_result r = make_result();
  const auto& c = r.cells[1];
  nlohmann::json j = run_to_json(c.runs[1], c.info[1]);
  EXPECT_EQ(j["repeat"], 2) << "repeats from 1 in the JSON";
  run_info info;
  // Through text, as between processes: doubles must survive exactly.
  auto back = run_from_json(nlohmann::json::parse(j.dump()), c.settings.scenario, info);
  EXPECT_EQ(info.repeat, 1u);
  EXPECT_EQ(info.wall_ms, 3100);
  EXPECT_EQ(info.cpu_ms, 120.5);
  EXPECT_EQ(info.start_lag_ms, 1.25);
  EXPECT_EQ(back.seed, c.runs[1].seed);
  EXPECT_EQ(back.kernel, c.runs[1].kernel);
  EXPECT_EQ(back.run_ms, c.runs[1].run_ms);
  EXPECT_EQ(back.metrics, c.runs[1].metrics);
  ASSERT_EQ(back.expectations.size(), 1u);
  EXPECT_EQ(back.expectations[0].spec.description, c.runs[1].expectations[0].spec.description);
  EXPECT_EQ(back.expectations[0].spec.value, 100);
  EXPECT_EQ(back.expectations[0].passed, c.runs[1].expectations[0].passed);
  ASSERT_EQ(back.listeners.size(), 1u);
  EXPECT_EQ(back.listeners[0].samples.size(), c.runs[1].listeners[0].samples.size());
  EXPECT_EQ(back.listeners[0].samples[1].accept_queue, 9u);
  EXPECT_EQ(back.node_counter_samples.size(), 31u);
  EXPECT_EQ(back.node_counter_samples[4].values.at("TcpExtListenDrops"), 40);
  // The same record again: nothing lost on the way.
  EXPECT_EQ(run_to_json(back, info), j);
}

TEST(sweep_shards, every_run_in_exactly_one_shard_in_sweep_order) {
  for (std::size_t n : {1, 2, 3, 5, 13}) {
    std::vector<std::pair<std::size_t, std::size_t>> all;
    for (std::size_t i = 1; i <= n; ++i)
      for (const auto& s : shard_runs(4, 3, {i, n})) {
        EXPECT_EQ((s.cell * 3 + s.repeat) % n + 1, i);
        all.emplace_back(s.cell, s.repeat);
      }
    std::sort(all.begin(), all.end());
    ASSERT_EQ(all.size(), 12u) << n;
    for (std::size_t k = 0; k < 12; ++k)
      EXPECT_EQ(all[k], std::make_pair(k / 3, k % 3));
  }
  EXPECT_EQ(parse_shard("2/4").index, 2u);
  EXPECT_EQ(parse_shard("2/4").count, 4u);
  for (const char* bad : {"0/4", "5/4", "4", "/4", "2/", "x/4", "2/4/1", "-1/4"})
    EXPECT_THROW(parse_shard(bad), input_error) << bad;
}

TEST(sweep_summary, mean_spread_and_sample_stddev) {
  summary s = summarise({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(s.n, 8u);
  EXPECT_DOUBLE_EQ(s.mean, 5);
  EXPECT_DOUBLE_EQ(s.min, 2);
  EXPECT_DOUBLE_EQ(s.max, 9);
  EXPECT_NEAR(s.stddev, 2.138, 1e-3); // sqrt(32 / 7)
  EXPECT_EQ(summarise({3}).stddev, 0);
  EXPECT_EQ(summarise({}).n, 0u);
}

TEST(sweep_report, csv_has_a_row_per_cell_with_mean_min_max_stddev) {
  std::ostringstream out;
  write_csv(out, make_result());
  std::string text = out.str();
  std::istringstream lines(text);
  std::string head, row1, row2;
  std::getline(lines, head);
  std::getline(lines, row1);
  std::getline(lines, row2);
  EXPECT_EQ(head.substr(0, head.find(",counter")),
            "cell,node:net.core.somaxconn,repeats,expectations_held,expectations_total");
  EXPECT_NE(head.find("counter.node.TcpExtListenOverflows.mean,counter.node.TcpExtListenOverflows"
                      ".min,counter.node.TcpExtListenOverflows.max,"),
            std::string::npos);
  EXPECT_EQ(row1.substr(0, row1.find(",0.75")), "1,8,2,2,2,50,40,60,14.14213562");
  EXPECT_EQ(row2.substr(0, row2.find(",0.75")), "2,64,2,0,2,400,400,400,0");
}

TEST(sweep_report, json_carries_settings_summaries_and_failed_expectations) {
  json j = to_json(make_result());
  EXPECT_EQ(j["scenario"], "tiny");
  EXPECT_EQ(j["seed"], 42);
  EXPECT_EQ(j["axes"][0]["key"], "node:net.core.somaxconn");
  ASSERT_EQ(j["cells"].size(), 2u);
  const json& c1 = j["cells"][0];
  EXPECT_EQ(c1["settings"]["node:net.core.somaxconn"], 8);
  EXPECT_EQ(c1["metrics"]["counter.node.TcpExtListenOverflows"]["mean"], 50);
  EXPECT_EQ(c1["metrics"]["counter.node.TcpExtListenOverflows"]["values"], json({40, 60}));
  EXPECT_TRUE(c1["expectations"]["passed"]);
  const json& c2 = j["cells"][1];
  EXPECT_FALSE(c2["expectations"]["passed"]);
  EXPECT_EQ(c2["runs"][0]["failed"][0]["measured"], 400);
  EXPECT_FALSE(j["passed"]);
}

TEST(sweep_report, table_shows_means_spread_and_expectations) {
  std::ostringstream out;
  sweep_result r = make_result();
  write_table(out, r);
  std::string text = out.str();
  EXPECT_NE(text.find("somaxconn"), std::string::npos) << text;
  EXPECT_NE(text.find("overflows"), std::string::npos) << text;
  EXPECT_NE(text.find("50±14"), std::string::npos) << text;
  EXPECT_NE(text.find("75%"), std::string::npos) << text;
  EXPECT_NE(text.find("2/2"), std::string::npos) << text;
  EXPECT_NE(text.find("0/2"), std::string::npos) << text;
  EXPECT_EQ(verdict(r), "FAIL: tiny, expectations failed in 1 of 2 cells (2)");
  r.interrupted = true;
  EXPECT_EQ(verdict(r), "INTERRUPTED: tiny, 2 of 2 cells finished");
}

TEST(sweep_report, html_is_self_contained_with_every_chart_per_cell) {
  std::ostringstream out;
  write_html(out, make_result());
  std::string html = out.str();
  EXPECT_EQ(count_of(html, "data-kind=\"accept-queue\""), 2u);
  EXPECT_EQ(count_of(html, "data-kind=\"drops\""), 2u);
  EXPECT_EQ(count_of(html, "data-kind=\"outcomes\""), 2u);
  EXPECT_EQ(count_of(html, "data-kind=\"connect-latency\""), 2u);
  EXPECT_EQ(count_of(html, "data-kind=\"across-cells\""), 1u);
  // Nothing to fetch: no scripts, no stylesheets or images by URL.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://", html.find("<body")), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  // The queue line climbs to the peak: a step path with a vertical move per change.
  EXPECT_TRUE(std::regex_search(html, std::regex("<path class=\"mark\" d=\"M[0-9.]+ [0-9.]+H")));
}

TEST(sweep_report, junit_is_valid_against_the_schema) {
  if (!lab::have_program("xmllint")) GTEST_SKIP() << "xmllint (Debian libxml2-utils) not installed";
  auto dir = std::filesystem::temp_directory_path() /
             ("backlog-lab-sweep-report-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  sweep_result r = make_result();
  for (bool interrupted : {false, true}) {
    r.interrupted = interrupted;
    std::string path = (dir / (interrupted ? "stopped.xml" : "junit.xml")).string();
    {
      std::ofstream f(path);
      write_junit(f, r);
    }
    auto res =
        lab::run_command(nullptr, {"xmllint", "--noout", "--schema", BACKLOG_LAB_JUNIT_XSD, path});
    EXPECT_EQ(res.exit_status, 0) << res.err;
    std::ifstream f(path);
    std::string xml((std::istreambuf_iterator<char>(f)), {});
    EXPECT_EQ(count_of(xml, "<testsuite "), interrupted ? 5u : 4u) << "a suite per cell and repeat";
    EXPECT_NE(xml.find("tiny cell 2 [node:net.core.somaxconn=64] repeat 2"), std::string::npos);
    EXPECT_EQ(count_of(xml, "<failure "), interrupted ? 3u : 2u);
    EXPECT_NE(xml.find("measured 400, expected &lt; 100"), std::string::npos) << xml;
    if (interrupted) {
      EXPECT_NE(xml.find("name=\"sweep completed\""), std::string::npos) << xml;
      EXPECT_EQ(xml.find("run completed"), std::string::npos) << xml;
    }
  }
  std::filesystem::remove_all(dir);
}

} // namespace
} // namespace backlog_lab::sweep
