// The text format writer: escaping and family layout, checked by promtool.
#include <gtest/gtest.h>

#include "harness/exporter/exposition.hpp"
#include "harness/lab/process.hpp"
#include "tests/harness/exporter/metrics_text.hpp"

namespace backlog_lab::exporter {
namespace {

TEST(Exposition, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value(R"(a\b"c)"
                               "\n"),
            R"(a\\b\"c\n)");
  exposition x;
  x.family("m_total", "counter", "help with \\ and\nnewline");
  x.sample("m_total", {label{"a", "x\"y"}, label{"empty", ""}}, std::uint64_t{7});
  x.sample("m_total", {}, 0.25);
  EXPECT_EQ(x.text(), "# HELP m_total help with \\\\ and\\nnewline\n"
                      "# TYPE m_total counter\n"
                      "m_total{a=\"x\\\"y\"} 7\n"
                      "m_total 0.25\n");
}

TEST(Exposition, PromtoolAcceptsWhatItWrites) {
  if (!lab::have_program("promtool")) GTEST_SKIP() << "promtool (Debian prometheus) missing";
  exposition x;
  x.family("backlog_lab_test_total", "counter", "A \"quoted\" help.");
  x.sample("backlog_lab_test_total", {label{"comm", "we\\ird\"\n"}}, std::uint64_t{1});
  x.family("backlog_lab_test_seconds", "gauge", "Seconds.");
  x.sample("backlog_lab_test_seconds", {}, 1e-7);
  auto r = testing::promtool_check(x.text());
  EXPECT_EQ(r.status, 0) << r.output << "\n" << x.text();
  // promtool does catch what breaks the rules (this test would notice a lenient promtool).
  auto bad = testing::promtool_check("# TYPE backlog_lab_bad counter\nbacklog_lab_bad 1\n");
  EXPECT_NE(bad.output.find("_total"), std::string::npos) << bad.output;
}

} // namespace
} // namespace backlog_lab::exporter
