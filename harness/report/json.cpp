#include "harness/observer/json.hpp"

#include <chrono>

#include "harness/report/report.hpp"

namespace backlog_lab::report {
namespace {

using nlohmann::json;

double ms(std::chrono::nanoseconds ns) {
  return std::chrono::duration<double, std::milli>(ns).count();
}

} // namespace

json latency_to_json(const clients::latency_histogram& h) {
  auto s = h.summary();
  json buckets = json::array();
  for (const auto& b : h.buckets())
    buckets.push_back(
        {{"from_ms", ms(b.lower)},
         {"to_ms", b.upper == std::chrono::nanoseconds::max() ? json(nullptr) : json(ms(b.upper))},
         {"count", b.count}});
  return {{"count", s.count},    {"min_ms", ms(s.min)}, {"p50_ms", ms(s.p50)},
          {"p90_ms", ms(s.p90)}, {"p99_ms", ms(s.p99)}, {"max_ms", ms(s.max)},
          {"buckets", buckets}};
}

json to_json(const runner::run_result& r) {
  json j;
  j["format"] = "backlog-lab-run/1";
  j["scenario"] = {{"name", r.scenario.name},
                   {"source", r.scenario.source},
                   {"description", r.scenario.description},
                   {"duration_ms", r.scenario.duration_ms}};
  j["seed"] = r.seed;
  j["kernel"] = r.kernel;
  j["setup_ms"] = r.setup_ms;
  j["run_ms"] = r.run_ms;
  json wall = json::array();
  for (const auto& p : r.wall)
    wall.push_back({{"phase", p.name}, {"ms", p.ms}});
  j["wall"] = wall;
  j["interrupted"] = r.interrupted;
  j["passed"] = r.passed();
  json events = json::array();
  for (const auto& e : r.events)
    events.push_back(
        {{"at_ms", e.at_ms}, {"action", e.action}, {"target", e.target}, {"note", e.note}});
  j["events"] = events;
  json listeners = json::array();
  for (const auto& t : r.listeners) {
    json samples = json::array(), full = json::array(), drops = json::array();
    for (const auto& s : t.samples)
      samples.push_back({s.at_ms, s.accept_queue});
    for (const auto& s : t.drop_samples)
      drops.push_back({s.at_ms, s.values.at("drops")});
    for (const auto& [from, to] : t.full_intervals)
      full.push_back({from, to});
    listeners.push_back(
        {{"namespace", t.role},
         {"port", t.port},
         {"backlog", t.backlog},
         {"peak", t.peak},
         {"full_ms", t.full_ms},
         {"first_full_ms", t.first_full_ms ? json(*t.first_full_ms) : json(nullptr)},
         {"full_intervals", full},
         {"accept_queue_series", samples},
         {"drops_series", drops}});
  }
  j["listeners"] = listeners;
  json counter_series = json::array();
  for (const auto& s : r.node_counter_samples)
    counter_series.push_back({{"at_ms", s.at_ms}, {"values", s.values}});
  j["node_counter_series"] = counter_series;
  json census = json::object();
  for (const auto& [role, c] : r.census)
    census[role] = observer::to_json(c, false);
  j["census"] = census;
  json counters = json::object();
  for (const auto& [role, values] : r.counters) {
    json v = json::object();
    for (const auto& [k, d] : values)
      if (d != 0) v[k] = d;
    counters[role] = v;
  }
  j["counter_deltas"] = counters;
  json clients = json::object();
  for (const auto& [name, c] : r.clients) {
    json outcomes = json::object();
    for (size_t k = 0; k < clients::outcome_count; ++k)
      outcomes[std::string(clients::to_string(static_cast<clients::outcome>(k)))] =
          c.counts.by_kind[k];
    clients[name] = {{"started", c.started},
                     {"connected", c.connected},
                     {"outcomes", outcomes},
                     {"connect_latency", latency_to_json(c.connect_latency)},
                     {"response_latency", latency_to_json(c.response_latency)},
                     {"peak_in_flight", c.peak_in_flight},
                     {"max_start_lag_ms", ms(c.max_start_lag)}};
    if (r.external_clients.count(name)) clients[name]["outside_lab"] = true;
  }
  j["clients"] = clients;
  json backends = json::object();
  for (const auto& [name, b] : r.backends)
    backends[name] = {{"accepted", b.accepted},       {"requests_served", b.requests_served},
                      {"bytes_in", b.bytes_in},       {"bytes_out", b.bytes_out},
                      {"resets_sent", b.resets_sent}, {"session_failures", b.session_failures}};
  j["backends"] = backends;
  json programs = json::object();
  for (const auto& [name, p] : r.programs)
    programs[name] = {{"role", p.role},
                      {"command", p.command},
                      {"state", p.state},
                      {"starts", p.starts},
                      {"reloads", p.reloads},
                      {"error", p.error},
                      {"stderr_tail", p.stderr_tail}};
  j["programs"] = programs;
  if (r.proxy)
    j["proxy"] = {{"accepted", r.proxy->accepted},
                  {"dial_attempts", r.proxy->dial_attempts},
                  {"dial_failures", r.proxy->dial_failures},
                  {"dial_gave_up", r.proxy->dial_gave_up},
                  {"listen_failures", r.proxy->listen_failures},
                  {"rule_syncs", r.proxy->rule_syncs},
                  {"rule_sync_failures", r.proxy->rule_sync_failures},
                  {"sync_errors", r.proxy->sync_errors},
                  {"rule_sync_ms", r.proxy->rule_sync_ms},
                  {"rules", r.rules_listing}};
  j["metrics"] = r.metrics;
  json expectations = json::array();
  for (const auto& e : r.expectations) {
    json x = {{"metric", e.spec.metric},
              {"op", scenario::name_of(e.spec.op)},
              {"passed", e.passed},
              {"measured", e.measured ? json(*e.measured) : json(nullptr)},
              {"expected", e.expected ? json(*e.expected) : json(nullptr)},
              {"description", e.spec.description}};
    if (e.spec.other) x["other"] = *e.spec.other;
    if (!e.note.empty()) x["note"] = e.note;
    expectations.push_back(x);
  }
  j["expectations"] = expectations;
  j["findings"] = findings(r);
  return j;
}

} // namespace backlog_lab::report
