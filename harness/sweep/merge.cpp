// `backlog-lab merge` of sweep shards: the shards' JSON reports read back and joined into the
// result one unsharded sweep would have produced (docs/sweep.md, "Shards and merge").
#include "harness/sweep/merge.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "harness/clients/latency_histogram.hpp"
#include "harness/core/error.hpp"
#include "harness/report/report.hpp"
#include "harness/sweep/report.hpp"

namespace backlog_lab::sweep {
namespace {

using json = nlohmann::json;

std::vector<std::string> set_texts(const json& axes) {
  std::vector<std::string> sets;
  for (const auto& a : axes)
    sets.push_back(a.at("set").get<std::string>());
  return sets;
}

} // namespace

bool is_sweep_report(const json& j) {
  return j.is_object() && j.contains("axes") && j.contains("cells") && j.contains("shard");
}

sweep_result merge_shards(const std::vector<shard_file>& files) {
  if (files.empty()) throw input_error("merge", "at least one sweep --json report");
  const json& first = files.front().report;
  // The fields that make two shards parts of one sweep.
  const char* same[] = {"source", "seed", "repeat", "metrics", "document", "cells_planned"};
  std::map<std::size_t, std::string> shard_of; // index -> file
  std::size_t count = 0;
  for (const auto& f : files) {
    if (!is_sweep_report(f.report))
      throw input_error(f.path, "a `backlog-lab sweep --json` report (with axes, cells, shard)");
    for (const char* key : same)
      if (f.report.at(key) != first.at(key))
        throw input_error(f.path + ": /" + key,
                          "the same as in " + files.front().path + " (shards of one sweep)");
    if (set_texts(f.report.at("axes")) != set_texts(first.at("axes")))
      throw input_error(f.path + ": /axes", "the same --set axes as in " + files.front().path +
                                                " (shards of one sweep)");
    std::size_t index = f.report.at("/shard/index"_json_pointer).get<std::size_t>();
    std::size_t n = f.report.at("/shard/count"_json_pointer).get<std::size_t>();
    if (count == 0) count = n;
    if (n != count)
      throw input_error(f.path + ": /shard/count", "the same shard count as " + files.front().path +
                                                       " (" + std::to_string(count) + ")");
    if (auto [it, fresh] = shard_of.emplace(index, f.path); !fresh)
      throw input_error(f.path + ": /shard/index", "a shard not given before (" + it->second +
                                                       " is shard " + std::to_string(index) + "/" +
                                                       std::to_string(count) + " too)");
  }
  std::string missing;
  for (std::size_t i = 1; i <= count; ++i)
    if (!shard_of.count(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
  if (!missing.empty())
    throw input_error("merge",
                      "every shard of " + std::to_string(count) + " (missing: " + missing + ")");

  // The cells again, from the document and --sets the shards recorded, so each run's scenario
  // is the cell's exactly as the sweep had it. The shards' kernels had their sysctls; this one
  // (a CI runner collecting results) need not.
  plan p = make_plan({first.at("document").dump(), first.at("source").get<std::string>()},
                     set_texts(first.at("axes")), sysctl_check::none);
  sweep_result out;
  out.scenario = first.at("scenario").get<std::string>();
  out.source = p.source;
  out.seed = first.at("seed").get<std::uint64_t>();
  out.repeat = first.at("repeat").get<std::size_t>();
  out.axes = p.axes;
  out.metrics = first.at("metrics").get<std::vector<std::string>>();
  out.cells_planned = p.cells.size();
  out.runs_planned = p.cells.size() * out.repeat;
  out.document = p.document;
  std::set<std::string> kernels;
  std::map<std::size_t, std::vector<std::pair<run_info, runner::run_result>>> runs;
  for (const auto& f : files) {
    const json& j = f.report;
    out.interrupted = out.interrupted || j.at("interrupted").get<bool>();
    if (j.contains("error") && out.error.empty())
      out.error = "shard " + j.at("/shard/index"_json_pointer).dump() + "/" +
                  std::to_string(count) + ": " + j["error"].get<std::string>();
    out.elapsed_ms = std::max(out.elapsed_ms, j.at("elapsed_ms").get<double>());
    out.parallel.jobs =
        std::max(out.parallel.jobs, j.at("/parallel/jobs"_json_pointer).get<std::size_t>());
    if (!j.at("kernel").get<std::string>().empty()) kernels.insert(j["kernel"].get<std::string>());
    for (const auto& c : j.at("cells")) {
      std::size_t index = c.at("cell").get<std::size_t>() - 1;
      if (index >= p.cells.size())
        throw input_error(f.path + ": /cells",
                          "cells numbered 1 to " + std::to_string(p.cells.size()));
      for (const auto& r : c.at("runs")) {
        run_info info;
        try {
          auto result = run_from_json(r, p.cells[index].scenario, info);
          runs[index].emplace_back(info, std::move(result));
        } catch (const input_error& e) {
          throw input_error(f.path + ": /cells/" + std::to_string(index) + "/runs/" + e.where(),
                            e.expected());
        }
      }
    }
  }
  for (const auto& k : kernels)
    out.kernel += (out.kernel.empty() ? "" : ", ") + k;
  for (auto& [index, list] : runs) {
    std::sort(list.begin(), list.end(),
              [](const auto& a, const auto& b) { return a.first.repeat < b.first.repeat; });
    // A cell is finished when every repeat is in (an interrupted shard drops unfinished cells).
    if (list.size() != out.repeat) continue;
    cell_result cr;
    cr.settings = p.cells[index];
    for (auto& [info, run] : list) {
      cr.seeds.push_back(run.seed);
      for (const auto& e : run.expectations)
        cr.expectations_held += e.passed;
      cr.expectations_total += run.expectations.size();
      cr.duration_ms += info.wall_ms;
      cr.info.push_back(info);
      cr.runs.push_back(std::move(run));
    }
    summarise_cell(cr, out.metrics);
    out.cells.push_back(std::move(cr));
  }
  assess_interference(out, false);
  if (kernels.size() > 1)
    out.parallel.notes.push_back("the shards ran on different kernels (" + out.kernel + ")");
  return out;
}

bool is_run_report(const json& j) {
  return j.is_object() && j.value("format", "") == "backlog-lab-run/1";
}

namespace {

std::chrono::nanoseconds from_ms(double ms) {
  return std::chrono::nanoseconds(std::llround(ms * 1e6));
}

clients::latency_histogram histogram_of(const json& h) {
  std::vector<clients::latency_bucket> buckets;
  for (const auto& b : h.at("buckets"))
    buckets.push_back(
        {from_ms(b.at("from_ms").get<double>()), {}, b.at("count").get<std::uint64_t>()});
  return clients::latency_histogram::from_buckets(buckets, from_ms(h.at("min_ms").get<double>()),
                                                  from_ms(h.at("max_ms").get<double>()));
}

// One client group summed over reports.
struct population {
  std::uint64_t started = 0, connected = 0, peak_in_flight = 0;
  std::map<std::string, std::uint64_t> outcomes;
  clients::latency_histogram connect, response;
  double max_start_lag_ms = 0;
  std::size_t reports = 0;
};

} // namespace

json merge_run_reports(const std::vector<shard_file>& files) {
  std::map<std::string, population> groups;
  json sources = json::array();
  for (const auto& f : files) {
    if (!is_run_report(f.report))
      throw input_error(f.path + ": /format", "\"backlog-lab-run/1\" (a run --json report)");
    const json& j = f.report;
    std::string at = "/clients";
    try {
      for (const auto& [name, c] : j.at("clients").items()) {
        at = "/clients/" + name;
        auto& g = groups[name];
        ++g.reports;
        g.started += c.at("started").get<std::uint64_t>();
        g.connected += c.at("connected").get<std::uint64_t>();
        g.peak_in_flight = std::max(g.peak_in_flight, c.at("peak_in_flight").get<std::uint64_t>());
        g.max_start_lag_ms = std::max(g.max_start_lag_ms, c.at("max_start_lag_ms").get<double>());
        for (const auto& [kind, n] : c.at("outcomes").items())
          g.outcomes[kind] += n.get<std::uint64_t>();
        g.connect.merge(histogram_of(c.at("connect_latency")));
        g.response.merge(histogram_of(c.at("response_latency")));
      }
      sources.push_back({{"file", f.path},
                         {"scenario", j.at("/scenario/name"_json_pointer)},
                         {"seed", j.at("seed")},
                         {"kernel", j.value("kernel", "")}});
    } catch (const json::exception& e) {
      throw input_error(f.path + ": " + at,
                        std::string("a client group as run --json writes it (") + e.what() + ")");
    }
  }
  json clients = json::object();
  for (const auto& [name, g] : groups) {
    std::uint64_t finished = 0;
    for (const auto& [kind, n] : g.outcomes)
      finished += n;
    json shares = json::object();
    for (const auto& [kind, n] : g.outcomes)
      shares[kind] = finished ? static_cast<double>(n) / static_cast<double>(finished) : 0.0;
    clients[name] = {{"reports", g.reports},
                     {"started", g.started},
                     {"connected", g.connected},
                     {"outcomes", g.outcomes},
                     {"outcome_shares", shares},
                     {"connect_latency", report::latency_to_json(g.connect)},
                     {"response_latency", report::latency_to_json(g.response)},
                     {"peak_in_flight", g.peak_in_flight},
                     {"max_start_lag_ms", g.max_start_lag_ms}};
  }
  return {{"format", "backlog-lab-run-merge/1"}, {"reports", sources}, {"clients", clients}};
}

void write_run_merge_table(std::ostream& out, const json& merged) {
  out << merged.at("reports").size() << " run reports merged (histograms summed bin by bin)\n\n";
  out << std::left << std::setw(16) << "group" << std::right << std::setw(8) << "reports"
      << std::setw(10) << "started" << std::setw(8) << "ans%" << std::setw(8) << "synun%"
      << std::setw(11) << "c_p50" << std::setw(11) << "c_p99" << std::setw(11) << "c_max"
      << std::setw(11) << "r_p50" << std::setw(11) << "r_p99"
      << "\n";
  auto ms = [](const json& v) {
    std::ostringstream s;
    s << std::setprecision(4) << v.get<double>();
    return s.str();
  };
  for (const auto& [name, g] : merged.at("clients").items()) {
    auto pct = [&](const char* kind) {
      const auto& s = g.at("outcome_shares");
      return std::to_string(std::lround(100 * s.value(kind, 0.0))) + "%";
    };
    const auto &c = g.at("connect_latency"), &r = g.at("response_latency");
    out << std::left << std::setw(16) << name << std::right << std::setw(8)
        << g.at("reports").get<std::size_t>() << std::setw(10)
        << g.at("started").get<std::uint64_t>() << std::setw(8) << pct("answered") << std::setw(8)
        << pct("syn_unanswered") << std::setw(11) << ms(c.at("p50_ms")) << std::setw(11)
        << ms(c.at("p99_ms")) << std::setw(11) << ms(c.at("max_ms")) << std::setw(11)
        << ms(r.at("p50_ms")) << std::setw(11) << ms(r.at("p99_ms")) << "\n";
  }
}

} // namespace backlog_lab::sweep
