#include "bench/driver/report.hpp"

#include <cmath>
#include <cstdio>

namespace backlog_lab::bench {
namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

/// Figures print with 3 significant digits or more.
std::string num(double v) {
  double a = std::fabs(v);
  if (a >= 1000) return fixed(v, 0);
  if (a >= 100) return fixed(v, 1);
  if (a >= 10) return fixed(v, 2);
  return fixed(v, 3);
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

} // namespace

ratio_row& ratio_row::at_least(double value) {
  target = ">= " + fixed(value, 2);
  limit = value;
  lower_is_better = false;
  return *this;
}

ratio_row& ratio_row::at_most(double value) {
  target = "<= " + fixed(value, 2);
  limit = value;
  lower_is_better = true;
  return *this;
}

bool ratio_row::met() const {
  if (!limit || ratio.runs.empty()) return true;
  if (tolerance) return std::fabs(ratio.median() - *limit) <= *tolerance;
  return lower_is_better ? ratio.median() <= *limit : ratio.median() >= *limit;
}

std::string ratio_row::margin() const {
  if (!limit) return "";
  if (ratio.runs.empty()) return "not measured";
  double m = ratio.median();
  if (tolerance) {
    double off = std::fabs(m - *limit) / *limit * 100;
    return "off by " + fixed(off, 2) + "%";
  }
  // Relative to the limit: 0.30 against <= 0.50 is met by 40%; 0.9 against >= 1.0 missed by 10%.
  double rel = lower_is_better ? (*limit - m) / *limit : (m - *limit) / *limit;
  return std::string(rel >= 0 ? "met by " : "missed by ") + fixed(std::fabs(rel) * 100, 0) + "%";
}

void compare_report::add(const std::string& section, const std::string& name,
                         const std::string& unit, double value) {
  auto& f = figures[section][name];
  f.unit = unit;
  f.runs.push_back(value);
}

const figure* compare_report::find(const std::string& section, const std::string& name) const {
  auto s = figures.find(section);
  if (s == figures.end()) return nullptr;
  auto f = s->second.find(name);
  return f == s->second.end() ? nullptr : &f->second;
}

ratio_row& compare_report::ratio(const std::string& section, const std::string& what,
                                 const std::string& ours, const std::string& theirs) {
  ratio_row row;
  row.section = section;
  row.what = what;
  row.ratio.unit = "ratio";
  const figure* a = find(section, ours);
  const figure* b = find(section, theirs);
  if (a && b)
    for (std::size_t i = 0; i < a->runs.size() && i < b->runs.size(); ++i)
      if (b->runs[i] != 0) row.ratio.runs.push_back(a->runs[i] / b->runs[i]);
  rows.push_back(std::move(row));
  return rows.back();
}

ratio_row& compare_report::value(const std::string& section, const std::string& what,
                                 const std::string& name) {
  ratio_row row;
  row.section = section;
  row.what = what;
  if (const figure* f = find(section, name)) row.ratio = *f;
  rows.push_back(std::move(row));
  return rows.back();
}

void compare_report::print(std::ostream& out) const {
  out << "\n"
      << pad("section", 10) << pad("comparison", 62) << pad("median", 9) << pad("spread", 19)
      << pad("target", 10) << "verdict\n";
  for (const auto& r : rows) {
    std::string spread =
        r.ratio.runs.empty() ? "-" : "[" + num(r.ratio.min()) + ", " + num(r.ratio.max()) + "]";
    std::string verdict = !r.limit  ? ""
                          : r.met() ? "MET (" + r.margin() + ")"
                                    : "MISSED (" + r.margin() + ")";
    if (r.limit && r.ratio.runs.empty()) verdict = "not measured";
    out << pad(r.section, 10) << pad(r.what, 62)
        << pad(r.ratio.runs.empty() ? "-" : num(r.ratio.median()), 9) << pad(spread, 19)
        << pad(r.target, 10) << verdict << "\n";
  }
  out << "\n"
      << pad("figure", 48) << pad("median", 11) << pad("min", 11) << pad("max", 11)
      << "unit (runs)\n";
  for (const auto& [section, names] : figures)
    for (const auto& [name, f] : names)
      out << pad(section + "." + name, 48) << pad(num(f.median()), 11) << pad(num(f.min()), 11)
          << pad(num(f.max()), 11) << f.unit << " (" << f.runs.size() << ")\n";
  for (const auto& [section, note] : notes)
    out << "note " << section << ": " << note << "\n";
}

void compare_report::print_markdown(std::ostream& out) const {
  out << "| section | comparison | median | spread (min–max) | target | verdict |\n"
      << "|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    std::string verdict = !r.limit               ? ""
                          : r.ratio.runs.empty() ? "not measured"
                          : r.met()              ? "**met** (" + r.margin() + ")"
                                                 : "**missed** (" + r.margin() + ")";
    out << "| " << r.section << " | " << r.what << " | "
        << (r.ratio.runs.empty() ? "-" : num(r.ratio.median())) << " | "
        << (r.ratio.runs.empty() ? "-" : num(r.ratio.min()) + "–" + num(r.ratio.max())) << " | "
        << r.target << " | " << verdict << " |\n";
  }
}

nlohmann::json compare_report::to_json() const {
  nlohmann::json j;
  auto& figs = j["figures"];
  figs = nlohmann::json::object();
  for (const auto& [section, names] : figures)
    for (const auto& [name, f] : names)
      figs[section][name] = {{"unit", f.unit},
                             {"runs", f.runs},
                             {"median", f.median()},
                             {"min", f.min()},
                             {"max", f.max()}};
  j["ratios"] = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json row = {{"section", r.section}, {"comparison", r.what},
                          {"runs", r.ratio.runs}, {"median", r.ratio.median()},
                          {"min", r.ratio.min()}, {"max", r.ratio.max()}};
    if (r.limit) {
      row["target"] = r.target;
      row["met"] = r.met();
      row["margin"] = r.margin();
    }
    j["ratios"].push_back(row);
  }
  j["notes"] = notes;
  return j;
}

} // namespace backlog_lab::bench
