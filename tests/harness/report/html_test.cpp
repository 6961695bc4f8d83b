// The run's HTML page from a run_result built by hand: self-contained, every chart with the run's
// numbers in its data-* attributes, findings, expectations, timeline and wall phases.
#include <gtest/gtest.h>
#include <regex>
#include <sstream>

#include "harness/report/report.hpp"
#include "harness/runner/run_result.hpp"

namespace backlog_lab::report {
namespace {

using namespace std::chrono_literals;

runner::run_result make_run() {
  runner::run_result r;
  r.scenario.name = "page <&>";
  r.scenario.description = "a hand-made run";
  r.scenario.sample_interval_ms = 100;
  r.kernel = "6.18.0";
  r.seed = 7;
  r.run_ms = 3000;
  r.wall = {{"lab", 120}, {"timeline", 2000}, {"teardown", 30}};
  r.events = {{0, "start-clients", "web", ""}, {500, "set-endpoints", "default/web:http", "none"}};
  // A node listener that filled, a pod listener that queued a little, one that stayed empty.
  runner::listener_track full{"node", 30720, 128, 129, 1500, 1000.0, {{1000, 2500}}, {}, {}};
  full.samples = {{0, 0}, {500, 64}, {1000, 129}, {2500, 3}};
  // Its own drops (sk_drops): 30 in the second second, 10 more in the third.
  full.drop_samples = {{0, {{"drops", 0}}}, {1500, {{"drops", 30}}}, {2500, {{"drops", 40}}}};
  runner::listener_track pod{"web", 8080, 4096, 2, 0, std::nullopt, {}, {{100, 2}, {200, 0}}, {}};
  runner::listener_track idle{"node", 31000, 128, 0, 0, std::nullopt, {}, {}, {}};
  r.listeners = {full, pod, idle};
  // ListenDrops since the start: 10 in the second second, 30 in the third.
  for (int t = 0; t <= 3000; t += 100)
    r.node_counter_samples.push_back({static_cast<double>(t),
                                      {{"TcpExtListenDrops", t < 1000   ? 0
                                                             : t < 2000 ? 10
                                                                        : 40},
                                       {"TcpExtListenOverflows", t < 1000   ? 0
                                                                 : t < 2000 ? 10
                                                                            : 40}}});
  observer::listener_summary l;
  l.local.port = 30720;
  l.accept_queue = 129;
  l.backlog = 128;
  l.full = true;
  l.unaccepted_close_wait = 129;
  r.census["node"].listeners = {l};
  r.counters["node"] = {{"TcpExtListenDrops", 40}, {"TcpExtListenOverflows", 40}};
  clients::client_results c;
  auto record = [&](std::chrono::nanoseconds start, clients::outcome kind) {
    clients::connection_record rec;
    rec.intended_start = start;
    rec.kind = kind;
    c.records.push_back(rec);
    ++c.counts[kind];
  };
  record(100ms, clients::outcome::answered);
  record(1200ms, clients::outcome::answered);
  record(1300ms, clients::outcome::syn_unanswered);
  record(2100ms, clients::outcome::syn_unanswered);
  c.started = 4;
  c.connect_latency.record(200us);
  c.connect_latency.record(1015ms);
  c.connect_latency.record(3020ms);
  r.clients["web"] = c;
  expect::expectation_result pass{
      {"listener.node.30720.accept_queue", scenario::compare_op::eq, 129.0, {}, "full"},
      129.0,
      129.0,
      true,
      ""};
  expect::expectation_result fail{
      {"clients.web.answered_share", scenario::compare_op::ge, 0.9, {}, "answered"},
      0.5,
      0.9,
      false,
      ""};
  r.expectations = {pass, fail};
  return r;
}

std::string page(const runner::run_result& r) {
  std::ostringstream out;
  write_html(out, r);
  return out.str();
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// The opening tag of the first svg.chart with data-kind `kind` and `extra` in it.
std::string chart_tag(const std::string& html, const std::string& kind, const std::string& extra) {
  std::smatch m;
  std::regex re("<svg class=\"chart\" data-kind=\"" + kind + "\"[^>]*" + extra + "[^>]*>");
  return std::regex_search(html, m, re) ? m.str() : "";
}

// The whole svg element of that chart.
std::string chart_svg(const std::string& html, const std::string& kind, const std::string& extra) {
  std::string tag = chart_tag(html, kind, extra);
  auto at = html.find(tag);
  if (tag.empty() || at == std::string::npos) return "";
  return html.substr(at, html.find("</svg>", at) - at);
}

TEST(run_html, is_self_contained) {
  std::string html = page(make_run());
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://", html.find("<body")), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_NE(html.find("<title>backlog-lab run: page &lt;&amp;&gt;</title>"), std::string::npos);
  EXPECT_EQ(html.find("page <&>"), std::string::npos) << "names are escaped";
  EXPECT_TRUE(html.ends_with("</body></html>\n"));
}

TEST(run_html, a_queue_chart_per_listener_that_queued_with_backlog_peak_and_full_periods) {
  std::string html = page(make_run());
  EXPECT_EQ(count_of(html, "data-kind=\"accept-queue\""), 2u) << "the idle listener has none";
  std::string node = chart_svg(html, "accept-queue", "data-namespace=\"node\" data-port=\"30720\"");
  ASSERT_FALSE(node.empty()) << html;
  EXPECT_NE(node.find("data-backlog=\"128\" data-peak=\"129\""), std::string::npos) << node;
  EXPECT_NE(node.find("class=\"backlog\" data-value=\"128\""), std::string::npos) << node;
  EXPECT_EQ(count_of(node, "class=\"full\""), 1u);
  EXPECT_NE(node.find("data-from=\"1000.0\" data-to=\"2500.0\""), std::string::npos) << node;
  EXPECT_NE(node.find("data-points=\"0.0,0 500.0,64 1000.0,129 2500.0,3\""), std::string::npos)
      << node;
  // The timeline's events as ticks above the plot, with what they did.
  EXPECT_EQ(count_of(node, "class=\"event\""), 2u);
  EXPECT_NE(node.find("<title>t=500 ms set-endpoints default/web:http: none</title>"),
            std::string::npos);
  std::string pod = chart_svg(html, "accept-queue", "data-namespace=\"web\" data-port=\"8080\"");
  EXPECT_NE(pod.find("data-peak=\"2\""), std::string::npos) << pod;
  EXPECT_EQ(count_of(pod, "class=\"full\""), 0u);
  // The listener table lists every listener, the idle one too, in ss's words.
  EXPECT_NE(html.find("<td>*:31000</td>"), std::string::npos);
  EXPECT_NE(html.find("Send-Q (backlog)"), std::string::npos);
}

TEST(run_html, drops_per_second_add_up_to_the_counters) {
  std::string html = page(make_run());
  std::string drops = chart_svg(html, "drops", "");
  ASSERT_FALSE(drops.empty());
  EXPECT_NE(drops.find("data-counter=\"TcpExtListenDrops\" data-total=\"40.0\""), std::string::npos)
      << drops;
  EXPECT_NE(drops.find("data-counter=\"TcpExtListenOverflows\" data-total=\"40.0\""),
            std::string::npos);
  // The counters in `netstat -st` words, in the terminal report's order.
  auto overflows = html.find("<tr data-counter=\"node.TcpExtListenOverflows\" data-value=\"40\">");
  auto listen_drops = html.find("<tr data-counter=\"node.TcpExtListenDrops\" data-value=\"40\">");
  ASSERT_NE(overflows, std::string::npos) << html;
  ASSERT_NE(listen_drops, std::string::npos);
  EXPECT_LT(overflows, listen_drops);
  EXPECT_NE(html.find("SYNs to LISTEN sockets dropped", listen_drops), std::string::npos);
}

TEST(run_html, each_dropping_listener_gets_its_own_drops_per_second) {
  std::string html = page(make_run());
  std::string chart = chart_svg(html, "listener-drops", "");
  ASSERT_FALSE(chart.empty()) << html;
  EXPECT_NE(chart.find("data-listener=\"node :30720\" data-total=\"40.0\""), std::string::npos)
      << chart;
  EXPECT_EQ(chart.find("data-listener=\"web :8080\""), std::string::npos)
      << "a listener that never dropped is left out";
  runner::run_result quiet = make_run();
  for (auto& t : quiet.listeners)
    t.drop_samples.clear();
  EXPECT_EQ(chart_svg(page(quiet), "listener-drops", ""), "") << "no listener dropped: no chart";
}

TEST(run_html, client_outcomes_over_time_and_latency_on_a_log_axis_with_syn_retry_steps) {
  std::string html = page(make_run());
  std::string outcomes = chart_svg(html, "outcomes-over-time", "data-group=\"web\"");
  ASSERT_FALSE(outcomes.empty()) << html;
  EXPECT_NE(outcomes.find("data-records=\"4.0\" data-records-dropped=\"0\""), std::string::npos);
  EXPECT_EQ(count_of(outcomes, "data-outcome=\"answered\""), 2u) << "in two time bins";
  EXPECT_EQ(count_of(outcomes, "data-outcome=\"syn_unanswered\""), 2u);
  std::string connect = chart_svg(html, "connect-latency", "data-group=\"web\"");
  ASSERT_FALSE(connect.empty());
  EXPECT_NE(connect.find("data-count=\"3\""), std::string::npos);
  EXPECT_EQ(count_of(connect, "<rect class=\"mark\""), 3u) << "one bar per non-empty bin";
  for (const char* step : {"SYN retry 1 s", "SYN retry 3 s", "SYN retry 7 s"})
    EXPECT_NE(connect.find(step), std::string::npos) << step;
  // Log axis: the 1.015 s and 3.02 s bars sit right of the 1 s tick, far from the 0.2 ms one.
  std::smatch m;
  std::vector<double> xs;
  std::string rest = connect;
  while (std::regex_search(rest, m, std::regex("<rect class=\"mark\" x=\"([0-9.]+)\""))) {
    xs.push_back(std::stod(m[1]));
    rest = m.suffix();
  }
  ASSERT_EQ(xs.size(), 3u);
  EXPECT_LT(xs[0] + 150, xs[1]) << "0.2 ms and 1 s lie 3.7 decades apart";
  EXPECT_LT(xs[1] + 20, xs[2]) << "1 s and 3 s lie half a decade apart";
  EXPECT_EQ(html.find("data-kind=\"response-latency\""), std::string::npos) << "no responses";
}

TEST(run_html, findings_expectations_timeline_and_wall_phases) {
  auto r = make_run();
  std::string html = page(r);
  auto found = findings(r);
  ASSERT_EQ(found.size(), 3u);
  for (const auto& f : found)
    EXPECT_NE(html.find("<p class=\"finding\">" + xml_escape(f) + "</p>"), std::string::npos) << f;
  EXPECT_NE(html.find("<tr data-metric=\"listener.node.30720.accept_queue\" "
                      "data-measured=\"129.0\" data-expected=\"129.0\" data-passed=\"true\">"
                      "<td class=\"pass\">PASS</td>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<tr data-metric=\"clients.web.answered_share\" data-measured=\"0.5\" "
                      "data-expected=\"0.9\" data-passed=\"false\"><td class=\"fail\">FAIL</td>"),
            std::string::npos);
  EXPECT_NE(html.find("FAIL: page &lt;&amp;&gt;, 1/2 expectations held"), std::string::npos);
  EXPECT_NE(html.find("<td>set-endpoints</td><td>default/web:http</td><td>none</td>"),
            std::string::npos);
  EXPECT_NE(html.find("<tr data-phase=\"timeline\" data-ms=\"2000.0\">"), std::string::npos);
  EXPECT_NE(html.find("<td>total</td><td class=\"num\">2150</td>"), std::string::npos);
}

TEST(run_html, an_empty_run_still_makes_a_page) {
  runner::run_result r;
  std::string html = page(r);
  EXPECT_NE(html.find("data-kind=\"drops\""), std::string::npos);
  EXPECT_EQ(html.find("data-kind=\"accept-queue\""), std::string::npos);
  EXPECT_EQ(html.find("class=\"finding\""), std::string::npos);
}

} // namespace
} // namespace backlog_lab::report
