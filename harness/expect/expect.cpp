#include "harness/expect/expect.hpp"

#include <algorithm>
#include <cmath>

namespace backlog_lab::expect {
namespace {

// '*' matches any run of characters (dots included), so one pattern can cover ports and states.
bool glob_match(const char* pattern, const char* text) {
  if (*pattern == '\0') return *text == '\0';
  if (*pattern == '*') {
    for (const char* t = text;; ++t) {
      if (glob_match(pattern + 1, t)) return true;
      if (*t == '\0') return false;
    }
  }
  return *pattern == *text && glob_match(pattern + 1, text + 1);
}

std::string similar_names(const metric_map& metrics, const std::string& name) {
  // Names sharing the longest dotted prefix with the unknown one.
  std::string base = name.substr(name.find(':') == std::string::npos ? 0 : name.find(':') + 1);
  std::vector<std::string> hits;
  for (size_t cut = base.size(); cut > 0 && hits.empty();) {
    cut = base.rfind('.', cut - 1);
    if (cut == std::string::npos) cut = 0;
    std::string prefix = base.substr(0, cut);
    for (const auto& [k, v] : metrics)
      if (k.rfind(prefix, 0) == 0 && hits.size() < 6) hits.push_back(k);
    if (cut == 0) break;
  }
  std::string out;
  for (const auto& h : hits)
    out += (out.empty() ? "" : ", ") + h;
  return out;
}

} // namespace

std::optional<double> lookup(const metric_map& metrics, const std::string& name) {
  auto colon = name.find(':');
  if (colon == std::string::npos) {
    auto it = metrics.find(name);
    if (it == metrics.end()) return std::nullopt;
    return it->second;
  }
  std::string fn = name.substr(0, colon), pattern = name.substr(colon + 1);
  std::optional<double> acc;
  size_t count = 0;
  for (const auto& [k, v] : metrics) {
    if (!glob_match(pattern.c_str(), k.c_str())) continue;
    ++count;
    if (!acc)
      acc = v;
    else if (fn == "max")
      acc = std::max(*acc, v);
    else if (fn == "min")
      acc = std::min(*acc, v);
    else if (fn == "sum")
      *acc += v;
  }
  if (fn == "count") return static_cast<double>(count);
  if (fn != "max" && fn != "min" && fn != "sum") return std::nullopt;
  return acc;
}

bool compare(double a, scenario::compare_op op, double b) {
  constexpr double eps = 1e-9;
  switch (op) {
  case scenario::compare_op::eq:
    return std::fabs(a - b) <= eps;
  case scenario::compare_op::ne:
    return std::fabs(a - b) > eps;
  case scenario::compare_op::lt:
    return a < b;
  case scenario::compare_op::le:
    return a <= b + eps;
  case scenario::compare_op::gt:
    return a > b;
  case scenario::compare_op::ge:
    return a + eps >= b;
  }
  return false;
}

std::vector<expectation_result> evaluate(const std::vector<scenario::expectation_spec>& specs,
                                         const metric_map& metrics) {
  std::vector<expectation_result> out;
  for (const auto& spec : specs) {
    expectation_result r;
    r.spec = spec;
    r.measured = lookup(metrics, spec.metric);
    r.expected = spec.value ? spec.value : lookup(metrics, *spec.other);
    if (!r.measured) {
      r.note = "no metric '" + spec.metric + "'";
      std::string near = similar_names(metrics, spec.metric);
      if (!near.empty()) r.note += " (similar: " + near + ")";
    } else if (!r.expected) {
      r.note = "no metric '" + *spec.other + "'";
    } else {
      r.passed = compare(*r.measured, spec.op, *r.expected);
    }
    out.push_back(std::move(r));
  }
  return out;
}

bool all_passed(const std::vector<expectation_result>& results) {
  return std::all_of(results.begin(), results.end(), [](const auto& r) { return r.passed; });
}

} // namespace backlog_lab::expect
