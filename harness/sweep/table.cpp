// The terminal table, CSV and JUnit of a sweep: the plain-text outputs.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "harness/report/report.hpp"
#include "harness/sweep/report.hpp"

namespace backlog_lab::sweep {
namespace {

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.ends_with(tail);
}

// "node:net.ipv4.tcp_abort_on_overflow" -> "abort_on_overflow"; pointers stay as they are.
std::string axis_heading(const axis& a) {
  if (a.sysctl.empty()) return a.key;
  std::string s = a.sysctl;
  for (const char* prefix : {"net.ipv4.", "net.core.", "net.ipv6.", "net."})
    if (s.rfind(prefix, 0) == 0) {
      s = s.substr(std::string(prefix).size());
      break;
    }
  if (s.rfind("tcp_", 0) == 0) s = s.substr(4);
  return a.role == "node" ? s : a.role + ":" + s;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s)
    out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_number(double v) {
  std::ostringstream s;
  s << std::setprecision(10) << v;
  return s.str();
}

// The standard deviation to the precision of its mean (percent points for shares); empty when
// it rounds to nothing.
std::string spread_text(const std::string& metric, const summary& s) {
  double sd = s.stddev;
  int digits = 0;
  if (metric.ends_with("_share"))
    sd *= 100;
  else if (std::fabs(s.mean) < 100 && sd < 10)
    digits = sd < 0.1 ? 2 : 1;
  std::string text = fixed(sd, digits);
  return text.find_first_not_of("0.") == std::string::npos ? "" : text;
}

} // namespace

std::string short_label(const std::string& metric, const sweep_result& r) {
  static const std::map<std::string, std::string> counters = {
      {"counter.node.TcpExtListenOverflows", "overflows"},
      {"counter.node.TcpExtListenDrops", "drops"},
      {"counter.node.TcpExtTCPReqQFullDrop", "reqq_drop"},
      {"counter.node.TcpExtSyncookiesSent", "cookies"},
      {"counter.node.TcpExtEmbryonicRsts", "emb_rst"},
      {"counter.clients.TcpExtTCPSynRetrans", "syn_rtx"}};
  if (auto it = counters.find(metric); it != counters.end()) return it->second;
  auto dot = [&](size_t from) { return metric.find('.', from); };
  if (metric.rfind("clients.", 0) == 0) {
    size_t end = dot(8);
    if (end == std::string::npos) return metric;
    std::string group = metric.substr(8, end - 8);
    std::string rest = metric.substr(end + 1);
    static const std::map<std::string, std::string> names = {
        {"answered_share", "ans%"},       {"syn_unanswered_share", "synun%"},
        {"unanswered_share", "unans%"},   {"reset_share", "rst%"},
        {"refused_share", "ref%"},        {"other_share", "oth%"},
        {"closed_early_share", "early%"}, {"aborted_share", "abrt%"},
        {"connect_ms.p50", "c_p50"},      {"connect_ms.p90", "c_p90"},
        {"connect_ms.p99", "c_p99"},      {"connect_ms.max", "c_max"},
        {"response_ms.p50", "r_p50"},     {"response_ms.p99", "r_p99"}};
    auto it = names.find(rest);
    std::string tail = it == names.end() ? rest : it->second;
    bool one_group = !r.cells.empty() && r.cells.front().settings.scenario.clients.size() == 1;
    return one_group ? tail : group + " " + tail;
  }
  if (metric.rfind("listener.node.", 0) == 0) {
    size_t end = dot(14);
    if (end == std::string::npos) return metric;
    std::string port = metric.substr(14, end - 14);
    std::string rest = metric.substr(end + 1);
    if (rest == "accept_queue_peak") rest = "peak";
    std::size_t listeners = 0;
    if (!r.cells.empty() && !r.cells.front().runs.empty())
      for (const auto& t : r.cells.front().runs.front().listeners)
        listeners += t.role == "node";
    return listeners == 1 ? rest : ":" + port + " " + rest;
  }
  return metric;
}

std::string format_value(const std::string& metric, double v) {
  if (ends_with(metric, "_share")) return fixed(v * 100, 0) + "%";
  if (std::fabs(v - std::round(v)) < 1e-9 || std::fabs(v) >= 100) return fixed(v, 0);
  return fixed(v, std::fabs(v) >= 10 ? 1 : 2);
}

void write_table(std::ostream& out, const sweep_result& r) {
  std::vector<std::string> head = {"cell"};
  for (const auto& a : r.axes)
    head.push_back(axis_heading(a));
  for (const auto& m : r.metrics)
    head.push_back(short_label(m, r));
  head.push_back("expect");
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : r.cells) {
    std::vector<std::string> row = {std::to_string(c.settings.index + 1)};
    for (const auto& [key, value] : c.settings.settings)
      row.push_back(value_text(value));
    for (const auto& m : r.metrics) {
      auto it = c.metrics.find(m);
      if (it == c.metrics.end()) {
        row.push_back("-");
        continue;
      }
      std::string text = format_value(m, it->second.mean);
      if (it->second.n > 1) {
        std::string sd = spread_text(m, it->second);
        if (!sd.empty()) text += "±" + sd;
      }
      row.push_back(text);
    }
    row.push_back(std::to_string(c.expectations_held) + "/" + std::to_string(c.expectations_total));
    rows.push_back(std::move(row));
  }
  // Display width: "±" is two bytes in UTF-8 but one column.
  auto width = [](const std::string& s) {
    size_t n = 0;
    for (unsigned char ch : s)
      n += (ch & 0xC0) != 0x80;
    return n;
  };
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) {
    w[i] = width(head[i]);
    for (const auto& row : rows)
      w[i] = std::max(w[i], width(row[i]));
  }
  auto line = [&](const std::vector<std::string>& cols) {
    std::string s;
    for (size_t i = 0; i < cols.size(); ++i) {
      std::string pad(w[i] - width(cols[i]), ' ');
      // Settings left-aligned, numbers right-aligned.
      bool left = i > 0 && i <= r.axes.size();
      s += (i ? "  " : "") + (left ? cols[i] + pad : pad + cols[i]);
    }
    while (!s.empty() && s.back() == ' ')
      s.pop_back();
    out << s << "\n";
  };
  line(head);
  for (const auto& row : rows)
    line(row);
  out << "\n";
  if (r.repeat > 1) out << "mean over " << r.repeat << " repeats, ± sample standard deviation\n";
  for (const auto& m : r.metrics) {
    std::string l = short_label(m, r);
    if (l != m) out << "  " << std::left << std::setw(10) << l << std::right << " " << m << "\n";
  }
  out << "  " << std::left << std::setw(10) << "expect" << std::right
      << " expectations held / evaluated, over all repeats\n";
}

std::string parallel_summary(const sweep_result& r) {
  const auto& p = r.parallel;
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << "runs: " << p.jobs << " at a time on " << p.cpus
    << " CPU" << (p.cpus == 1 ? "" : "s") << ", " << p.busy_cpus
    << " CPUs busy on average, clients' worst start lag " << p.max_start_lag_ms
    << " ms: " << (p.notes.empty() ? "no sign of interference" : "see the warnings");
  return s.str();
}

std::string verdict_of_cells(const sweep_result& r);

std::string verdict(const sweep_result& r) {
  std::string v = verdict_of_cells(r);
  if (r.shard.count > 1)
    v += " (shard " + std::to_string(r.shard.index) + "/" + std::to_string(r.shard.count) + ": " +
         std::to_string(r.runs_finished()) + " of " + std::to_string(r.runs_planned) + " runs)";
  return v;
}

std::string verdict_of_cells(const sweep_result& r) {
  std::string cells = std::to_string(r.cells.size()) + " of " +
                      std::to_string(r.shard.count > 1 ? r.cells.size() : r.cells_planned) +
                      " cells";
  if (r.interrupted) return "INTERRUPTED: " + r.scenario + ", " + cells + " finished";
  if (!r.error.empty()) return "ERROR: " + r.scenario + ", " + cells + " finished; " + r.error;
  std::string failing;
  std::size_t n = 0;
  for (const auto& c : r.cells)
    if (!c.passed()) {
      failing += (failing.empty() ? "" : ", ") + std::to_string(c.settings.index + 1);
      ++n;
    }
  if (n == 0)
    return "PASS: " + r.scenario + ", every expectation held in all " +
           std::to_string(r.cells.size()) + " cells";
  return "FAIL: " + r.scenario + ", expectations failed in " + std::to_string(n) + " of " +
         std::to_string(r.cells.size()) + " cells (" + failing + ")";
}

void write_csv(std::ostream& out, const sweep_result& r) {
  out << "cell";
  for (const auto& a : r.axes)
    out << "," << csv_field(a.key);
  out << ",repeats,expectations_held,expectations_total";
  for (const auto& m : r.metrics)
    for (const char* s : {".mean", ".min", ".max", ".stddev"})
      out << "," << csv_field(m + s);
  out << "\n";
  for (const auto& c : r.cells) {
    out << c.settings.index + 1;
    for (const auto& [key, value] : c.settings.settings)
      out << "," << csv_field(value_text(value));
    out << "," << c.runs.size() << "," << c.expectations_held << "," << c.expectations_total;
    for (const auto& m : r.metrics) {
      auto it = c.metrics.find(m);
      if (it == c.metrics.end()) {
        out << ",,,,";
        continue;
      }
      const summary& s = it->second;
      out << "," << csv_number(s.mean) << "," << csv_number(s.min) << "," << csv_number(s.max)
          << "," << csv_number(s.stddev);
    }
    out << "\n";
  }
}

void write_junit(std::ostream& out, const sweep_result& r) {
  // Copies named after their cell, so each run is its own testsuite in CI.
  std::vector<runner::run_result> named;
  for (const auto& c : r.cells)
    for (size_t k = 0; k < c.runs.size(); ++k) {
      runner::run_result copy;
      copy.scenario = c.runs[k].scenario;
      std::string label = c.settings.label();
      copy.scenario.name = r.scenario + " cell " + std::to_string(c.settings.index + 1) +
                           (label.empty() ? "" : " [" + label + "]") + " repeat " +
                           std::to_string((k < c.info.size() ? c.info[k].repeat : k) + 1);
      copy.seed = c.runs[k].seed;
      copy.kernel = c.runs[k].kernel;
      copy.run_ms = c.runs[k].run_ms;
      copy.expectations = c.runs[k].expectations;
      named.push_back(std::move(copy));
    }
  if (r.interrupted || !r.error.empty()) {
    // The cells that did not run fail the build rather than vanish from it.
    runner::run_result stopped;
    stopped.scenario.name = r.scenario + " sweep";
    stopped.scenario.source = r.source;
    stopped.seed = r.seed;
    stopped.kernel = r.kernel;
    stopped.interrupted = true;
    named.push_back(std::move(stopped));
  }
  std::vector<const runner::run_result*> runs;
  for (const auto& n : named)
    runs.push_back(&n);
  report::junit_stop stop{"sweep completed", r.interrupted ? "interrupted" : r.error};
  report::write_junit(out, runs, "backlog-lab sweep " + r.scenario, stop);
}

} // namespace backlog_lab::sweep
