// The JSON document of a sweep (docs/sweep.md).
#include "harness/sweep/report.hpp"

namespace backlog_lab::sweep {

nlohmann::json to_json(const sweep_result& r) {
  using json = nlohmann::json;
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
    for (const auto& run : c.runs) {
      json failed = json::array();
      std::size_t held = 0;
      for (const auto& e : run.expectations) {
        held += e.passed;
        if (e.passed) continue;
        json f = {{"metric", e.spec.metric},
                  {"op", scenario::name_of(e.spec.op)},
                  {"description", e.spec.description}};
        f["measured"] = e.measured ? json(*e.measured) : json();
        f["expected"] = e.expected ? json(*e.expected) : json();
        if (!e.note.empty()) f["note"] = e.note;
        failed.push_back(std::move(f));
      }
      runs.push_back({{"seed", run.seed},
                      {"run_ms", run.run_ms},
                      {"setup_ms", run.setup_ms},
                      {"expectations_held", held},
                      {"expectations_total", run.expectations.size()},
                      {"failed", std::move(failed)}});
    }
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
              {"interrupted", r.interrupted},
              {"elapsed_ms", r.elapsed_ms},
              {"passed", r.passed()},
              {"cells", std::move(cells)}};
  if (!r.error.empty()) out["error"] = r.error;
  return out;
}

} // namespace backlog_lab::sweep
