#include "harness/sweep/sweep.hpp"

#include <chrono>
#include <cmath>

#include "harness/core/error.hpp"
#include "harness/expect/expect.hpp"
#include "harness/runner/runner.hpp"

namespace backlog_lab::sweep {
namespace {

using clock = std::chrono::steady_clock;

double ms_since(clock::time_point t) {
  return std::chrono::duration<double, std::milli>(clock::now() - t).count();
}

bool stop_asked(const sweep_options& o) {
  return o.stop_requested && o.stop_requested->load();
}

// Drops what the sweep's reports never read, so 36 runs stay small in memory.
void trim(runner::run_result& r) {
  for (auto& [role, c] : r.census)
    c.sockets.clear();
  for (auto& [name, c] : r.clients)
    c.records.clear();
}

} // namespace

summary summarise(const std::vector<double>& values) {
  summary s;
  s.values = values;
  s.n = values.size();
  if (s.n == 0) return s;
  s.min = s.max = values.front();
  double sum = 0;
  for (double v : values) {
    sum += v;
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  s.mean = sum / static_cast<double>(s.n);
  if (s.n > 1) {
    double sq = 0;
    for (double v : values)
      sq += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(sq / static_cast<double>(s.n - 1));
  }
  return s;
}

bool sweep_result::passed() const {
  if (interrupted || !error.empty() || cells.size() != cells_planned) return false;
  for (const auto& c : cells)
    if (!c.passed()) return false;
  return true;
}

const std::vector<std::string>& outcome_names() {
  static const std::vector<std::string> names = {"answered",     "syn_unanswered", "unanswered",
                                                 "closed_early", "refused",        "reset",
                                                 "other",        "aborted"};
  return names;
}

std::vector<std::string> default_metrics(const runner::run_result& first) {
  std::vector<std::string> m = {
      "counter.node.TcpExtListenOverflows", "counter.node.TcpExtListenDrops",
      "counter.node.TcpExtTCPReqQFullDrop", "counter.node.TcpExtSyncookiesSent",
      "counter.node.TcpExtEmbryonicRsts",   "counter.clients.TcpExtTCPSynRetrans"};
  for (const auto& g : first.scenario.clients) {
    std::string p = "clients." + g.name + ".";
    for (const char* o : {"answered", "syn_unanswered", "unanswered", "reset", "refused", "other"})
      m.push_back(p + o + "_share");
    m.push_back(p + "connect_ms.p50");
    m.push_back(p + "connect_ms.p99");
  }
  for (const auto& t : first.listeners) {
    if (t.role != "node") continue;
    std::string p = "listener.node." + std::to_string(t.port) + ".";
    m.push_back(p + "backlog");
    m.push_back(p + "accept_queue_peak");
    m.push_back(p + "full_ms");
  }
  return m;
}

sweep_result run_sweep(const plan& p, const sweep_options& o) {
  sweep_result out;
  out.source = p.source;
  out.scenario = p.cells.empty() ? "" : p.cells.front().scenario.name;
  out.seed = o.seed;
  out.repeat = std::max<std::size_t>(1, o.repeat);
  out.axes = p.axes;
  out.metrics = o.metrics;
  out.cells_planned = p.cells.size();
  auto start = clock::now();
  double run_ms_sum = 0;
  std::size_t runs_done = 0;

  auto report = [&](std::size_t done, std::size_t repeat, const cell* current) {
    if (!o.on_progress) return;
    progress pr;
    pr.cells_done = done;
    pr.cells_total = p.cells.size();
    pr.repeat = repeat;
    pr.repeats = out.repeat;
    pr.current = current;
    pr.elapsed_ms = ms_since(start);
    std::size_t left_runs = (p.cells.size() - done) * out.repeat - repeat;
    if (!out.cells.empty()) {
      double cell_ms = 0;
      for (const auto& c : out.cells)
        cell_ms += c.duration_ms;
      cell_ms /= static_cast<double>(out.cells.size());
      pr.eta_ms = cell_ms * static_cast<double>(left_runs) / static_cast<double>(out.repeat);
    } else if (runs_done > 0) {
      pr.eta_ms = run_ms_sum / static_cast<double>(runs_done) * static_cast<double>(left_runs);
    }
    o.on_progress(pr);
  };

  for (const auto& c : p.cells) {
    cell_result cr;
    cr.settings = c;
    auto cell_start = clock::now();
    bool complete = true;
    for (std::size_t r = 0; r < out.repeat; ++r) {
      if (stop_asked(o)) {
        out.interrupted = true;
        complete = false;
        break;
      }
      report(out.cells.size(), r, &c);
      runner::run_options ro;
      ro.seed = repeat_seed(o.seed, r);
      ro.stop_requested = o.stop_requested;
      ro.log = o.log;
      auto run_start = clock::now();
      runner::run_result result;
      try {
        result = runner::run_scenario(c.scenario, ro);
      } catch (const std::exception& e) {
        out.error = "cell " + std::to_string(c.index + 1) + " (" + c.label() + "): " + e.what();
        complete = false;
        break;
      }
      run_ms_sum += ms_since(run_start);
      ++runs_done;
      if (result.interrupted) {
        out.interrupted = true;
        complete = false;
        break;
      }
      if (out.kernel.empty()) out.kernel = result.kernel;
      if (out.metrics.empty()) out.metrics = default_metrics(result);
      trim(result);
      cr.seeds.push_back(result.seed);
      for (const auto& e : result.expectations)
        cr.expectations_held += e.passed;
      cr.expectations_total += result.expectations.size();
      cr.runs.push_back(std::move(result));
    }
    if (!complete) break;
    cr.duration_ms = ms_since(cell_start);
    for (const auto& name : out.metrics) {
      std::vector<double> values;
      for (const auto& r : cr.runs)
        if (auto v = expect::lookup(r.metrics, name)) values.push_back(*v);
      if (!values.empty()) cr.metrics[name] = summarise(values);
    }
    out.cells.push_back(std::move(cr));
  }
  out.elapsed_ms = ms_since(start);
  report(out.cells.size(), 0, nullptr);
  return out;
}

} // namespace backlog_lab::sweep
