// `backlog-lab run --html` for real: a shipped scenario on the kernel, its page rendered in
// headless Chromium, and the charts' data read back from the rendered DOM held against the same
// run's --json.
#include <algorithm>
#include <filesystem>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/lab/process.hpp"
#include "tests/harness/cli/chromium.hpp"
#include "tests/harness/cli/cli_runner.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// What the rendered page shows: per chart its kind, size, data-* attributes, and the marks that
// carry data; the rendered position of each queue line's top and of its backlog line; the rows
// of the expectations and wall tables; the findings' text.
const char* page_measure = R"(
const out = {charts: [], expectations: [], wall: [], findings: [], counters: []};
for (const svg of document.querySelectorAll('svg.chart')) {
  const box = svg.getBoundingClientRect();
  const c = {kind: svg.dataset.kind, width: box.width, height: box.height, data: {...svg.dataset},
             marks: 0, series: [], bands: 0};
  for (const m of svg.querySelectorAll('.mark')) {
    const b = m.getBBox();
    if (b.width > 0 || b.height > 0) c.marks++;
    if (m.dataset.points !== undefined) { c.points = m.dataset.points; c.line_top = b.y; }
    if (m.dataset.counter !== undefined) c.series.push([m.dataset.counter, Number(m.dataset.total)]);
  }
  const backlog = svg.querySelector('.backlog');
  if (backlog) { c.backlog_value = Number(backlog.dataset.value); c.backlog_y = backlog.getBBox().y; }
  c.bands = svg.querySelectorAll('.full').length;
  // Bars at or past the first SYN retransmission (1 s) on the latency charts' log axis.
  const retry = svg.querySelector('.syn-retry[data-ms="1000"]');
  if (retry) {
    const at = retry.getBBox().x;
    c.bars_after_retry = 0;
    for (const m of svg.querySelectorAll('.mark')) c.bars_after_retry += m.getBBox().x >= at - 0.01;
  }
  out.charts.push(c);
}
for (const tr of document.querySelectorAll('table.expectations tbody tr'))
  out.expectations.push({metric: tr.dataset.metric, measured: JSON.parse(tr.dataset.measured),
                         passed: tr.dataset.passed === 'true',
                         verdict: tr.cells[0].textContent});
for (const tr of document.querySelectorAll('table.wall tbody tr[data-phase]'))
  out.wall.push([tr.dataset.phase, Number(tr.dataset.ms)]);
for (const p of document.querySelectorAll('p.finding')) out.findings.push(p.textContent);
for (const tr of document.querySelectorAll('table.counters tbody tr'))
  out.counters.push([tr.dataset.counter, Number(tr.cells[1].textContent)]);)";

// "t,q t,q ..." of data-points as [[t, q], ...].
json parse_points(const std::string& text) {
  json out = json::array();
  std::istringstream in(text);
  for (std::string pair; in >> pair;) {
    auto comma = pair.find(',');
    out.push_back({std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1))});
  }
  return out;
}

const json* chart_of(const json& page, const std::string& kind,
                     const std::map<std::string, std::string>& data) {
  for (const auto& c : page["charts"]) {
    if (c["kind"] != kind) continue;
    bool all = true;
    for (const auto& [k, v] : data)
      all = all && c["data"].value(k, "") == v;
    if (all) return &c;
  }
  return nullptr;
}

void check_queues(const json& page, const json& run) {
  size_t queued = 0;
  for (const auto& l : run["listeners"]) {
    if (l["peak"].get<int>() == 0) continue;
    ++queued;
    std::string role = l["namespace"], port = std::to_string(l["port"].get<int>());
    SCOPED_TRACE(role + " :" + port);
    const json* c = chart_of(page, "accept-queue", {{"namespace", role}, {"port", port}});
    ASSERT_NE(c, nullptr) << "no chart for a listener that queued";
    EXPECT_GT((*c)["width"].get<double>(), 100);
    EXPECT_GT((*c)["height"].get<double>(), 50);
    EXPECT_GT((*c)["marks"].get<int>(), 0);
    EXPECT_EQ(std::stoi((*c)["data"]["peak"].get<std::string>()), l["peak"]);
    EXPECT_EQ(std::stoi((*c)["data"]["backlog"].get<std::string>()), l["backlog"]);
    EXPECT_EQ((*c)["backlog_value"], l["backlog"]) << "the backlog line";
    json points = parse_points((*c)["points"]);
    EXPECT_EQ(points, l["accept_queue_series"]) << "the line's points are the JSON's series";
    double top = 0;
    for (const auto& p : points)
      top = std::max(top, p[1].get<double>());
    EXPECT_EQ(top, l["peak"].get<double>());
    EXPECT_EQ((*c)["bands"].get<size_t>(), l["full_intervals"].size()) << "full periods shaded";
    // Rendered: a queue that went past its backlog draws above the backlog line (SVG y grows
    // downwards), one that did not stays at or below it.
    if (l["peak"] > l["backlog"])
      EXPECT_LT((*c)["line_top"].get<double>(), (*c)["backlog_y"].get<double>());
    else
      EXPECT_GE((*c)["line_top"].get<double>(), (*c)["backlog_y"].get<double>());
  }
  size_t charts = 0;
  for (const auto& c : page["charts"])
    charts += c["kind"] == "accept-queue";
  EXPECT_EQ(charts, queued);
  EXPECT_GE(queued, 1u);
}

void check_drops(const json& page, const json& run) {
  const json* c = chart_of(page, "drops", {});
  ASSERT_NE(c, nullptr);
  const json& last = run["node_counter_series"].back()["values"];
  ASSERT_EQ((*c)["series"].size(), 2u);
  for (const auto& s : (*c)["series"]) {
    SCOPED_TRACE(s.dump());
    EXPECT_EQ(s[1].get<double>(), last[s[0].get<std::string>()].get<double>())
        << "the bins add up to the counter";
  }
  EXPECT_GT(last["TcpExtListenDrops"].get<double>(), 0) << "the scenario drops SYNs";
  EXPECT_GT((*c)["marks"].get<int>(), 0);
}

void check_clients(const json& page, const json& run) {
  for (const auto& [group, c] : run["clients"].items()) {
    SCOPED_TRACE(group);
    const json* outcomes = chart_of(page, "outcomes-over-time", {{"group", group}});
    ASSERT_NE(outcomes, nullptr);
    double finished = 0;
    for (const auto& [kind, n] : c["outcomes"].items())
      finished += n.get<double>();
    EXPECT_EQ(std::stod((*outcomes)["data"]["records"].get<std::string>()), finished);
    EXPECT_GT((*outcomes)["marks"].get<int>(), 0);
    const json* connect = chart_of(page, "connect-latency", {{"group", group}});
    ASSERT_NE(connect, nullptr);
    EXPECT_EQ((*connect)["data"]["count"],
              std::to_string(c["connect_latency"]["count"].get<int>()));
    EXPECT_EQ((*connect)["marks"], c["connect_latency"]["buckets"].size()) << "a bar per bin";
    // Connects after a dropped SYN (the retransmission after 1 s) are drawn right of the 1 s line.
    size_t retried = 0;
    for (const auto& b : c["connect_latency"]["buckets"])
      retried += b["from_ms"].get<double>() >= 1000;
    EXPECT_EQ((*connect)["bars_after_retry"], retried);
    EXPECT_GT(retried, 0u) << "the scenario's clients connect after SYN retransmissions";
    if (c["response_latency"]["count"].get<int>() > 0) {
      const json* response = chart_of(page, "response-latency", {{"group", group}});
      ASSERT_NE(response, nullptr);
      EXPECT_EQ((*response)["marks"], c["response_latency"]["buckets"].size());
    }
  }
}

void check_tables(const json& page, const json& run) {
  ASSERT_EQ(page["expectations"].size(), run["expectations"].size());
  for (size_t i = 0; i < page["expectations"].size(); ++i) {
    const json& shown = page["expectations"][i];
    const json& e = run["expectations"][i];
    EXPECT_EQ(shown["metric"], e["metric"]);
    EXPECT_EQ(shown["measured"], e["measured"]) << e["metric"];
    EXPECT_EQ(shown["passed"], e["passed"]);
    EXPECT_EQ(shown["verdict"], e["passed"].get<bool>() ? "PASS" : "FAIL");
  }
  ASSERT_EQ(page["wall"].size(), run["wall"].size());
  for (size_t i = 0; i < page["wall"].size(); ++i) {
    EXPECT_EQ(page["wall"][i][0], run["wall"][i]["phase"]);
    EXPECT_EQ(page["wall"][i][1], run["wall"][i]["ms"]);
  }
  EXPECT_EQ(page["findings"], run["findings"]);
  ASSERT_FALSE(page["counters"].empty());
  for (const auto& c : page["counters"]) {
    std::string key = c[0];
    auto dot = key.find('.');
    EXPECT_EQ(c[1], run["counter_deltas"][key.substr(0, dot)][key.substr(dot + 1)]) << key;
  }
  EXPECT_EQ(page["findings"].size(), 3u) << "the node's listener filled: three answers";
}

TEST(run_html_cmd, the_page_renders_and_its_charts_hold_the_runs_json) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!lab::have_program("chromium"))
    GTEST_SKIP() << "chromium not installed (scripts/setup installs Debian's chromium)";
  fs::path html = scratch_dir() / "r.html", json_path = scratch_dir() / "r.json";
  // Bursts against a slow acceptor: the node's listener fills and drains again, SYNs are
  // dropped, and connects after SYN retransmissions land at 1 s and 3 s (about 5 s in all).
  auto r = run({"run", "tuning-accept-queue", "--seed", "3", "-q", "--html", html.string(),
                "--json", json_path.string()});
  ASSERT_TRUE(r.code == 0 || r.code == 1) << r.out << r.err;
  json run_json = json::parse(read_file(json_path));
  json page = render_in_chromium(html, page_measure);
  ASSERT_TRUE(page.is_object());
  {
    SCOPED_TRACE("accept queues");
    check_queues(page, run_json);
  }
  {
    SCOPED_TRACE("drops");
    check_drops(page, run_json);
  }
  {
    SCOPED_TRACE("clients");
    check_clients(page, run_json);
  }
  {
    SCOPED_TRACE("tables");
    check_tables(page, run_json);
  }
}

} // namespace
} // namespace backlog_lab::cli
