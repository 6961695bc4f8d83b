// The sweep's reports from a hand-made result: numbers land in the right columns, the JUnit is
// schema-valid, the HTML has a chart of each kind per cell.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <sstream>

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
  r.axes.push_back(parse_set("node:net.core.somaxconn=8,64"));
  r.metrics = {"counter.node.TcpExtListenOverflows", "clients.burst.answered_share"};
  r.cells_planned = 2;
  for (std::size_t i = 0; i < 2; ++i) {
    cell_result c;
    c.settings.index = i;
    c.settings.settings = {{"node:net.core.somaxconn", i == 0 ? 8 : 64}};
    c.settings.scenario = s;
    for (std::size_t k = 0; k < 2; ++k) {
      c.runs.push_back(make_run(s, i == 0 ? 40.0 + 20 * k : 400, i == 0));
      c.seeds.push_back(repeat_seed(42, k));
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
