// The HTML report of a sweep: one self-contained page, inline CSS and SVG, no scripts, so it
// opens offline and renders the same in any browser.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "harness/report/report.hpp"
#include "harness/report/svg.hpp"
#include "harness/sweep/report.hpp"

namespace backlog_lab::sweep {
namespace {

// Text and attribute values: the same escaping as the JUnit report.
std::string esc(const std::string& s) {
  return report::xml_escape(s);
}

using report::svg::chart;
using report::svg::nice_step;
using report::svg::num;
using report::svg::outcome_colours;
using report::svg::series_colours;

double run_seconds(const cell_result& c) {
  double end = 0;
  for (const auto& r : c.runs)
    end = std::max(end, r.run_ms);
  return std::max(1.0, end / 1000);
}

// Node listeners' accept queue over time, a line per repeat, the capacity (backlog + 1) dashed.
std::string queue_chart(const cell_result& c) {
  double peak = 1, capacity = 0;
  for (const auto& r : c.runs)
    for (const auto& t : r.listeners)
      if (t.role == "node") {
        peak = std::max<double>(peak, t.peak);
        capacity = std::max<double>(capacity, t.backlog + 1.0);
      }
  double secs = run_seconds(c);
  chart ch("accept-queue", secs, std::max(peak, capacity) * 1.05, "seconds", "accept queue");
  ch.x_ticks(nice_step(secs, 6));
  std::vector<std::pair<std::string, std::string>> legend;
  for (size_t k = 0; k < c.runs.size(); ++k) {
    const char* colour = series_colours[k % series_colours.size()];
    for (const auto& t : c.runs[k].listeners) {
      if (t.role != "node") continue;
      std::vector<std::pair<double, double>> points;
      for (const auto& smp : t.samples)
        points.emplace_back(smp.at_ms / 1000, smp.accept_queue);
      ch.step_line(points, c.runs[k].run_ms / 1000, colour,
                   "repeat " + std::to_string(k + 1) + ", :" + std::to_string(t.port));
    }
    legend.push_back({colour, "repeat " + std::to_string(k + 1)});
  }
  if (capacity > 0) {
    ch.hline(capacity, "#d62728", "backlog + 1 = " + num(capacity));
    legend.push_back({"#d62728", "backlog + 1 = " + num(capacity)});
  }
  ch.legend(legend);
  return ch.svg();
}

// TcpExtListenDrops of the node per whole second, the mean over repeats.
std::string drops_chart(const cell_result& c) {
  double secs = run_seconds(c);
  size_t bins = static_cast<size_t>(std::ceil(secs));
  std::vector<double> sum(bins, 0);
  for (const auto& r : c.runs) {
    auto per_second =
        report::svg::increase_per_bin(r.node_counter_samples, "TcpExtListenDrops", 1000, bins);
    for (size_t k = 0; k < bins; ++k)
      sum[k] += per_second[k];
  }
  double n = std::max<double>(1, static_cast<double>(c.runs.size()));
  double top = 1;
  for (double& v : sum)
    top = std::max(top, v /= n);
  chart ch("drops", static_cast<double>(bins), top * 1.05, "second of the run", "ListenDrops / s");
  for (size_t k = 0; k < bins; ++k) {
    ch.x_category(static_cast<double>(k) + 0.5, std::to_string(k + 1));
    if (sum[k] > 0)
      ch.rect(static_cast<double>(k) + 0.1, 0, static_cast<double>(k) + 0.9, sum[k], "#d62728",
              num(sum[k]) + " drops in second " + std::to_string(k + 1));
  }
  ch.legend({{"#d62728", "node TcpExtListenDrops per second, mean of " +
                             std::to_string(c.runs.size()) + " repeats"}});
  return ch.svg();
}

double mean_metric(const cell_result& c, const std::string& name) {
  double sum = 0;
  size_t n = 0;
  for (const auto& r : c.runs)
    if (auto it = r.metrics.find(name); it != r.metrics.end()) {
      sum += it->second;
      ++n;
    }
  return n ? sum / static_cast<double>(n) : 0;
}

std::pair<double, double> range_metric(const cell_result& c, const std::string& name) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& r : c.runs)
    if (auto it = r.metrics.find(name); it != r.metrics.end()) {
      lo = std::min(lo, it->second);
      hi = std::max(hi, it->second);
    }
  return lo <= hi ? std::pair{lo, hi} : std::pair{0.0, 0.0};
}

// Outcome shares per client group: one stacked bar each, means over repeats.
std::string outcomes_chart(const cell_result& c) {
  const auto& groups = c.settings.scenario.clients;
  double width = 420, height = 60 + 34.0 * static_cast<double>(groups.size());
  std::ostringstream marks;
  double left = 52, right = 12, y0 = 30;
  double plot = width - left - right;
  for (size_t g = 0; g < groups.size(); ++g) {
    double x = left, y = y0 + 34.0 * static_cast<double>(g);
    std::string p = "clients." + groups[g].name + ".";
    marks << "<text x=\"" << num(left - 5) << "\" y=\"" << num(y + 15) << "\" text-anchor=\"end\">"
          << esc(groups[g].name) << "</text>";
    const auto& names = outcome_names();
    for (size_t k = 0; k < names.size(); ++k) {
      double share = mean_metric(c, p + names[k] + "_share");
      if (share <= 0) continue;
      marks << "<rect class=\"mark\" x=\"" << num(x) << "\" y=\"" << num(y) << "\" width=\""
            << num(std::max(0.5, share * plot)) << "\" height=\"22\" fill=\"" << outcome_colours[k]
            << "\"><title>" << esc(groups[g].name + " " + names[k]) << " " << num(share * 100)
            << "%</title></rect>";
      x += share * plot;
    }
  }
  for (int pct = 0; pct <= 100; pct += 25)
    marks << "<text x=\"" << num(left + plot * pct / 100) << "\" y=\"" << num(height - 22)
          << "\" text-anchor=\"middle\">" << pct << "</text>";
  std::vector<std::pair<std::string, std::string>> legend;
  for (size_t k = 0; k < outcome_names().size(); ++k) {
    bool any = false;
    for (const auto& g : groups)
      any = any || mean_metric(c, "clients." + g.name + "." + outcome_names()[k] + "_share") > 0;
    if (any) legend.push_back({outcome_colours[k], outcome_names()[k]});
  }
  // Horizontal bars on a 0..100 % scale: drawn here rather than with `chart`, which is vertical.
  std::ostringstream s;
  s << "<svg class=\"chart\" data-kind=\"outcomes\" xmlns=\"http://www.w3.org/2000/svg\" width=\""
    << num(width) << "\" height=\"" << num(height) << "\" viewBox=\"0 0 " << num(width) << " "
    << num(height) << "\" role=\"img\">" << marks.str();
  double lx = left;
  for (const auto& [colour, text] : legend) {
    s << "<rect x=\"" << num(lx) << "\" y=\"4\" width=\"10\" height=\"10\" fill=\"" << colour
      << "\"/><text x=\"" << num(lx + 13) << "\" y=\"13\">" << esc(text) << "</text>";
    lx += 22 + 6.2 * static_cast<double>(text.size());
  }
  s << "<text x=\"" << num(left + plot / 2) << "\" y=\"" << num(height - 4)
    << "\" text-anchor=\"middle\">share of finished connections (%)</text></svg>";
  return s.str();
}

// Connect-latency percentiles per client group: bars of the mean, whiskers min..max of repeats.
std::string latency_chart(const cell_result& c) {
  const auto& groups = c.settings.scenario.clients;
  const char* const pcts[] = {"p50", "p90", "p99", "max"};
  double top = 1;
  for (const auto& g : groups)
    for (const char* p : pcts)
      top = std::max(top, range_metric(c, "clients." + g.name + ".connect_ms." + p).second);
  double slots = static_cast<double>(groups.size() * 5);
  chart ch("connect-latency", slots, top * 1.05, "client group: p50 p90 p99 max", "connect ms");
  std::vector<std::pair<std::string, std::string>> legend;
  for (size_t g = 0; g < groups.size(); ++g) {
    std::string p = "clients." + groups[g].name + ".connect_ms.";
    ch.x_category(static_cast<double>(g) * 5 + 2, groups[g].name);
    for (size_t k = 0; k < 4; ++k) {
      double at = static_cast<double>(g) * 5 + static_cast<double>(k) + 0.5;
      double v = mean_metric(c, p + pcts[k]);
      auto [lo, hi] = range_metric(c, p + pcts[k]);
      ch.rect(at - 0.4, 0, at + 0.4, v, series_colours[k],
              groups[g].name + " connect " + pcts[k] + " " + num(v) + " ms");
      ch.whisker(at, lo, hi);
    }
  }
  for (size_t k = 0; k < 4; ++k)
    legend.push_back({series_colours[k], pcts[k]});
  ch.legend(legend);
  return ch.svg();
}

// The chosen metric across the cells: bars of the mean, whiskers min..max over repeats.
std::string across_chart(const sweep_result& r, const std::string& metric) {
  double top = 0;
  for (const auto& c : r.cells)
    if (auto it = c.metrics.find(metric); it != c.metrics.end())
      top = std::max(top, it->second.max);
  double n = static_cast<double>(std::max<size_t>(1, r.cells.size()));
  double width = std::max(420.0, 64 + 46 * n);
  chart ch("across-cells", n, top * 1.05, "cell", short_label(metric, r), width, 260);
  for (size_t i = 0; i < r.cells.size(); ++i) {
    const auto& c = r.cells[i];
    double at = static_cast<double>(i) + 0.5;
    ch.x_category(at, std::to_string(c.settings.index + 1));
    auto it = c.metrics.find(metric);
    if (it == c.metrics.end()) continue;
    ch.rect(at - 0.35, 0, at + 0.35, it->second.mean, "#1f77b4",
            "cell " + std::to_string(c.settings.index + 1) + " " + c.settings.label() + ": " +
                format_value(metric, it->second.mean));
    ch.whisker(at, it->second.min, it->second.max);
  }
  ch.legend({{"#1f77b4", "mean over repeats; whiskers: min..max"}});
  return ch.svg();
}

void write_summary_table(std::ostream& out, const sweep_result& r) {
  out << "<table class=\"summary\"><thead><tr><th>cell</th>";
  for (const auto& a : r.axes)
    out << "<th>" << esc(a.key) << "</th>";
  for (const auto& m : r.metrics)
    out << "<th title=\"" << esc(m) << "\">" << esc(short_label(m, r)) << "</th>";
  out << "<th>expectations</th></tr></thead><tbody>";
  for (const auto& c : r.cells) {
    out << "<tr class=\"" << (c.passed() ? "pass" : "fail") << "\"><td><a href=\"#cell-"
        << c.settings.index + 1 << "\">" << c.settings.index + 1 << "</a></td>";
    for (const auto& [key, value] : c.settings.settings)
      out << "<td>" << esc(value_text(value)) << "</td>";
    for (const auto& m : r.metrics) {
      auto it = c.metrics.find(m);
      if (it == c.metrics.end()) {
        out << "<td>-</td>";
        continue;
      }
      const summary& s = it->second;
      out << "<td class=\"num\" title=\"min " << esc(format_value(m, s.min)) << ", max "
          << esc(format_value(m, s.max)) << ", stddev " << esc(format_value(m, s.stddev)) << "\">"
          << esc(format_value(m, s.mean));
      if (s.n > 1 && s.max > s.min)
        out << "<span class=\"spread\"> " << esc(format_value(m, s.min)) << "–"
            << esc(format_value(m, s.max)) << "</span>";
      out << "</td>";
    }
    out << "<td class=\"num\">" << c.expectations_held << "/" << c.expectations_total
        << "</td></tr>";
  }
  out << "</tbody></table>";
}

} // namespace

void write_html(std::ostream& out, const sweep_result& r, const std::string& chart_metric) {
  std::string metric =
      chart_metric.empty() && !r.metrics.empty() ? r.metrics.front() : chart_metric;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>backlog-lab "
         "sweep: "
      << esc(r.scenario) << "</title>\n<style>" << report::svg::page_style()
      << "</style></head>\n<body>\n";
  out << "<h1>backlog-lab sweep: " << esc(r.scenario) << "</h1>\n<p>Source " << esc(r.source)
      << ", kernel " << esc(r.kernel) << ", seed " << r.seed << ", " << r.repeat
      << " repeat(s) per cell, " << r.cells.size() << " of " << r.cells_planned
      << " cells finished in " << num(r.elapsed_ms / 1000) << " s.</p>\n<p class=\"verdict "
      << (r.passed() ? "pass" : "fail") << "\">" << esc(verdict(r)) << "</p>\n";
  if (!r.axes.empty()) {
    out << "<p>Settings:";
    for (const auto& a : r.axes)
      out << " <code>--set " << esc(a.text) << "</code>";
    out << "</p>\n";
  }
  out << "<h2>" << esc(metric) << " across the cells</h2>\n<figure>" << across_chart(r, metric)
      << "</figure>\n<h2>Summary</h2>\n";
  write_summary_table(out, r);
  out << "\n<h2>Cells</h2>\n";
  for (const auto& c : r.cells) {
    out << "<section class=\"cell\" id=\"cell-" << c.settings.index + 1 << "\"><h3>Cell "
        << c.settings.index + 1 << ": "
        << esc(c.settings.label().empty() ? "as written" : c.settings.label()) << "</h3>\n<p>"
        << c.expectations_held << " of " << c.expectations_total << " expectations held over "
        << c.runs.size() << " repeat(s); seeds";
    for (auto s : c.seeds)
      out << " " << s;
    out << ".</p>\n<div class=\"charts\">"
        << "<figure>" << queue_chart(c)
        << "<figcaption>Node listeners' accept queue (Recv-Q) over time</figcaption></figure>"
        << "<figure>" << drops_chart(c)
        << "<figcaption>SYNs and ACKs dropped by node listeners per second</figcaption></figure>"
        << "<figure>" << outcomes_chart(c)
        << "<figcaption>How client connections ended (mean shares)</figcaption></figure>"
        << "<figure>" << latency_chart(c)
        << "<figcaption>Connect latency from each connection's intended start</figcaption>"
        << "</figure></div></section>\n";
  }
  out << "</body></html>\n";
}

} // namespace backlog_lab::sweep
