#include <gtest/gtest.h>

#include "harness/expect/expect.hpp"

namespace backlog_lab::expect {
namespace {

// The operator spelled as in a scenario file.
scenario::compare_op op(std::string_view text) {
  return scenario::enum_from_name<scenario::compare_op>(text).value();
}

scenario::expectation_spec spec(std::string metric, std::string_view op_text, double value) {
  scenario::expectation_spec s;
  s.metric = std::move(metric);
  s.op = op(op_text);
  s.value = value;
  return s;
}

TEST(expect, compares_each_operator_both_ways) {
  EXPECT_TRUE(compare(129, op("=="), 129));
  EXPECT_FALSE(compare(128, op("=="), 129));
  EXPECT_TRUE(compare(1, op("!="), 2));
  EXPECT_FALSE(compare(2, op("!="), 2));
  EXPECT_TRUE(compare(1, op("<"), 2));
  EXPECT_FALSE(compare(2, op("<"), 2));
  EXPECT_TRUE(compare(2, op("<="), 2));
  EXPECT_FALSE(compare(3, op("<="), 2));
  EXPECT_TRUE(compare(3, op(">"), 2));
  EXPECT_FALSE(compare(2, op(">"), 2));
  EXPECT_TRUE(compare(2, op(">="), 2));
  EXPECT_FALSE(compare(1, op(">="), 2));
  EXPECT_FALSE(scenario::enum_from_name<scenario::compare_op>("=~"));
}

TEST(expect, evaluates_values_and_other_metrics) {
  metric_map m{{"counter.node.TcpExtListenOverflows", 56}, {"counter.node.TcpExtListenDrops", 56}};
  scenario::expectation_spec eq;
  eq.metric = "counter.node.TcpExtListenDrops";
  eq.other = "counter.node.TcpExtListenOverflows";
  auto results = evaluate({eq, spec("counter.node.TcpExtListenOverflows", ">", 0),
                           spec("counter.node.TcpExtListenOverflows", "<", 10)},
                          m);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].passed);
  EXPECT_EQ(*results[0].expected, 56);
  EXPECT_TRUE(results[1].passed);
  EXPECT_FALSE(results[2].passed);
  EXPECT_EQ(*results[2].measured, 56);
  EXPECT_FALSE(all_passed(results));
}

TEST(expect, unknown_metric_fails_and_names_similar_ones) {
  metric_map m{{"listener.node.30720.accept_queue", 129}, {"listener.node.30720.backlog", 128}};
  auto results = evaluate({spec("listener.node.30720.acept_queue", "==", 129)}, m);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].passed);
  EXPECT_FALSE(results[0].measured.has_value());
  EXPECT_NE(results[0].note.find("listener.node.30720.accept_queue"), std::string::npos)
      << results[0].note;
}

TEST(expect, aggregates_over_globs) {
  metric_map m{{"listener.node.30720.close_wait_unaccepted", 129},
               {"listener.node.31425.close_wait_unaccepted", 40},
               {"listener.node.31425.backlog", 128}};
  EXPECT_EQ(*lookup(m, "max:listener.node.*.close_wait_unaccepted"), 129);
  EXPECT_EQ(*lookup(m, "min:listener.node.*.close_wait_unaccepted"), 40);
  EXPECT_EQ(*lookup(m, "sum:listener.node.*.close_wait_unaccepted"), 169);
  EXPECT_EQ(*lookup(m, "count:listener.node.*.close_wait_unaccepted"), 2);
  EXPECT_EQ(*lookup(m, "count:listener.pods.*"), 0);
  EXPECT_FALSE(lookup(m, "max:listener.pods.*").has_value());
  EXPECT_FALSE(lookup(m, "median:listener.node.*").has_value());
}

} // namespace
} // namespace backlog_lab::expect
