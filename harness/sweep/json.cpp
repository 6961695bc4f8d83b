// The JSON document of a sweep (docs/sweep.md).
#include "harness/core/error.hpp"
#include "harness/sweep/report.hpp"

namespace backlog_lab::sweep {

using json = nlohmann::json;

namespace {

json optional_number(const std::optional<double>& v) {
  return v ? json(*v) : json();
}

std::optional<double> number_or_null(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return j[key].get<double>();
}

} // namespace

json run_to_json(const runner::run_result& run, const run_info& info) {
  json failed = json::array(), expectations = json::array();
  std::size_t held = 0;
  for (const auto& e : run.expectations) {
    held += e.passed;
    json spec = {{"metric", e.spec.metric},
                 {"op", scenario::name_of(e.spec.op)},
                 {"description", e.spec.description}};
    spec["value"] = optional_number(e.spec.value);
    spec["other"] = e.spec.other ? json(*e.spec.other) : json();
    expectations.push_back({{"spec", spec},
                            {"measured", optional_number(e.measured)},
                            {"expected", optional_number(e.expected)},
                            {"passed", e.passed},
                            {"note", e.note}});
    if (e.passed) continue;
    json f = {{"metric", e.spec.metric},
              {"op", scenario::name_of(e.spec.op)},
              {"description", e.spec.description}};
    f["measured"] = optional_number(e.measured);
    f["expected"] = optional_number(e.expected);
    if (!e.note.empty()) f["note"] = e.note;
    failed.push_back(std::move(f));
  }
  json listeners = json::array();
  for (const auto& t : run.listeners) {
    json samples = json::array();
    for (const auto& s : t.samples)
      samples.push_back({s.at_ms, s.accept_queue});
    listeners.push_back({{"role", t.role},
                         {"port", t.port},
                         {"backlog", t.backlog},
                         {"peak", t.peak},
                         {"full_ms", t.full_ms},
                         {"samples", std::move(samples)}});
  }
  json counter_samples = json::array();
  for (const auto& s : run.node_counter_samples)
    counter_samples.push_back({{"at_ms", s.at_ms}, {"values", s.values}});
  return {{"repeat", info.repeat + 1},
          {"seed", run.seed},
          {"kernel", run.kernel},
          {"run_ms", run.run_ms},
          {"setup_ms", run.setup_ms},
          {"wall_ms", info.wall_ms},
          {"cpu_ms", optional_number(info.cpu_ms)},
          {"start_lag_ms", optional_number(info.start_lag_ms)},
          {"interrupted", run.interrupted},
          {"expectations_held", held},
          {"expectations_total", run.expectations.size()},
          {"failed", std::move(failed)},
          {"expectations", std::move(expectations)},
          {"metrics", run.metrics},
          {"listeners", std::move(listeners)},
          {"node_counter_samples", std::move(counter_samples)}};
}

runner::run_result run_from_json(const json& j, const scenario::scenario& s, run_info& info) {
  runner::run_result r;
  r.scenario = s;
  r.seed = j.at("seed").get<std::uint64_t>();
  r.kernel = j.at("kernel").get<std::string>();
  r.run_ms = j.at("run_ms").get<double>();
  r.setup_ms = j.at("setup_ms").get<double>();
  r.interrupted = j.value("interrupted", false);
  info.repeat = j.at("repeat").get<std::size_t>() - 1;
  info.wall_ms = j.value("wall_ms", 0.0);
  info.cpu_ms = number_or_null(j, "cpu_ms");
  info.start_lag_ms = number_or_null(j, "start_lag_ms");
  for (const auto& e : j.at("expectations")) {
    expect::expectation_result x;
    const auto& spec = e.at("spec");
    x.spec.metric = spec.at("metric").get<std::string>();
    auto op = scenario::enum_from_name<scenario::compare_op>(spec.at("op").get<std::string>());
    if (!op)
      throw input_error("expectations/spec/op", "one of " +
                                                    scenario::enum_choices<scenario::compare_op>() +
                                                    ", got " + spec.at("op").dump());
    x.spec.op = *op;
    x.spec.description = spec.at("description").get<std::string>();
    x.spec.value = number_or_null(spec, "value");
    if (spec.contains("other") && !spec["other"].is_null())
      x.spec.other = spec["other"].get<std::string>();
    x.measured = number_or_null(e, "measured");
    x.expected = number_or_null(e, "expected");
    x.passed = e.at("passed").get<bool>();
    x.note = e.value("note", "");
    r.expectations.push_back(std::move(x));
  }
  r.metrics = j.at("metrics").get<expect::metric_map>();
  for (const auto& t : j.at("listeners")) {
    runner::listener_track l;
    l.role = t.at("role").get<std::string>();
    l.port = t.at("port").get<std::uint16_t>();
    l.backlog = t.at("backlog").get<std::uint32_t>();
    l.peak = t.at("peak").get<std::uint32_t>();
    l.full_ms = t.at("full_ms").get<double>();
    for (const auto& p : t.at("samples"))
      l.samples.push_back({p.at(0).get<double>(), p.at(1).get<std::uint32_t>()});
    r.listeners.push_back(std::move(l));
  }
  for (const auto& c : j.at("node_counter_samples"))
    r.node_counter_samples.push_back(
        {c.at("at_ms").get<double>(), c.at("values").get<std::map<std::string, std::int64_t>>()});
  return r;
}

json to_json(const sweep_result& r) {
  json axes = json::array();
  for (const auto& a : r.axes)
    axes.push_back({{"key", a.key}, {"set", a.text}, {"pointer", a.pointer}, {"values", a.values}});
  json cells = json::array();
  for (const auto& c : r.cells) {
    json settings = json::object();
    for (const auto& [key, value] : c.settings.settings)
      settings[key] = value;
    json metrics = json::object();
    for (const auto& [name, s] : c.metrics)
      metrics[name] = {{"n", s.n},     {"mean", s.mean},     {"min", s.min},
                       {"max", s.max}, {"stddev", s.stddev}, {"values", s.values}};
    json runs = json::array();
    for (std::size_t k = 0; k < c.runs.size(); ++k)
      runs.push_back(run_to_json(c.runs[k], k < c.info.size() ? c.info[k] : run_info{}));
    cells.push_back(
        {{"cell", c.settings.index + 1},
         {"label", c.settings.label()},
         {"settings", std::move(settings)},
         {"seeds", c.seeds},
         {"duration_ms", c.duration_ms},
         {"expectations",
          {{"held", c.expectations_held}, {"total", c.expectations_total}, {"passed", c.passed()}}},
         {"metrics", std::move(metrics)},
         {"runs", std::move(runs)}});
  }
  json out = {{"scenario", r.scenario},
              {"source", r.source},
              {"kernel", r.kernel},
              {"seed", r.seed},
              {"repeat", r.repeat},
              {"axes", std::move(axes)},
              {"metrics", r.metrics},
              {"cells_planned", r.cells_planned},
              {"cells_finished", r.cells.size()},
              {"shard", {{"index", r.shard.index}, {"count", r.shard.count}}},
              {"runs_planned", r.runs_planned},
              {"runs_finished", r.runs_finished()},
              {"document", r.document},
              {"parallel",
               {{"jobs", r.parallel.jobs},
                {"cpus", r.parallel.cpus},
                {"busy_cpus", r.parallel.busy_cpus},
                {"max_start_lag_ms", r.parallel.max_start_lag_ms},
                {"lag_limit_ms", interference::lag_limit_ms},
                {"lagging_runs", r.parallel.lagging_runs},
                {"notes", r.parallel.notes}}},
              {"interrupted", r.interrupted},
              {"elapsed_ms", r.elapsed_ms},
              {"passed", r.passed()},
              {"cells", std::move(cells)}};
  if (!r.error.empty()) out["error"] = r.error;
  return out;
}

} // namespace backlog_lab::sweep
