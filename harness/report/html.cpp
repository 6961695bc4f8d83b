// The HTML report of a run: one self-contained page (inline CSS and SVG, no scripts) with the
// run's story: accept queues over time, drops per second, client outcomes over time, latency
// distributions, expectations, timeline, wall phases and the findings. Chart data sits in data-*
// attributes with the same numbers as `run --json`, so a test can hold the page against it.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "harness/report/report.hpp"
#include "harness/report/svg.hpp"

namespace backlog_lab::report {
namespace {

using svg::chart;
using svg::num;

std::string esc(const std::string& s) {
  return xml_escape(s);
}

// A number as `run --json` writes it, so data-* values compare equal to the JSON's.
std::string exact(double v) {
  return nlohmann::json(v).dump();
}

std::string attr(const std::string& name, const std::string& value) {
  return " data-" + name + "=\"" + esc(value) + "\"";
}

// A measured value for people: whole numbers without decimals, others to 3 significant digits.
std::string readable(double v) {
  if (std::fabs(v - std::round(v)) < 1e-9) return num(std::round(v));
  std::ostringstream s;
  s << std::setprecision(3) << v;
  return s.str();
}

// The timeline's events as ticks above the plot of a chart over seconds of the run, so that a
// queue filling or drops starting can be read against what the scenario did.
void event_ticks(chart& ch, const runner::run_result& r) {
  for (const auto& e : r.events)
    ch.event_tick(e.at_ms / 1000, "t=" + num(e.at_ms) + " ms " + e.action + " " + e.target +
                                      (e.note.empty() ? "" : ": " + e.note));
}

double run_seconds(const runner::run_result& r) {
  return std::max(1.0, r.run_ms / 1000);
}

// The width of a time bin for the over-time charts: a round step giving about 30 bins, never
// finer than the sampler's interval.
double bin_ms(const runner::run_result& r) {
  return std::max<double>(r.scenario.sample_interval_ms, svg::nice_step(r.run_ms, 30));
}

std::size_t bin_count(const runner::run_result& r) {
  return static_cast<std::size_t>(std::ceil(std::max(r.run_ms, 1.0) / bin_ms(r)));
}

std::string ms_label(double ms) {
  if (ms >= 1000) return num(ms / 1000) + " s";
  if (ms >= 1) return num(ms) + " ms";
  std::ostringstream s;
  s << ms << " ms";
  return s.str();
}

// One listener's accept queue (Recv-Q) over time: the queue as a step line, its backlog
// (Send-Q) dashed, the periods it was full (queue > backlog) shaded.
std::string queue_chart(const runner::run_result& r, const runner::listener_track& t) {
  double secs = run_seconds(r);
  double top = std::max({1.0, static_cast<double>(t.peak), t.backlog + 1.0}) * 1.08;
  chart ch("accept-queue", secs, top, "seconds", "Recv-Q (accept queue)");
  ch.data("namespace", t.role);
  ch.data("port", std::to_string(t.port));
  ch.data("backlog", std::to_string(t.backlog));
  ch.data("peak", std::to_string(t.peak));
  ch.data("full-ms", exact(t.full_ms));
  ch.x_ticks(svg::nice_step(secs, 6));
  event_ticks(ch, r);
  for (const auto& [from, to] : t.full_intervals)
    ch.band(from / 1000, to / 1000, "#fbd5d5", "full from " + num(from) + " to " + num(to) + " ms",
            " class=\"full\"" + attr("from", exact(from)) + attr("to", exact(to)));
  std::vector<std::pair<double, double>> points;
  std::string data;
  for (const auto& s : t.samples) {
    points.emplace_back(s.at_ms / 1000, s.accept_queue);
    data += (data.empty() ? "" : " ") + exact(s.at_ms) + "," + std::to_string(s.accept_queue);
  }
  ch.hline(t.backlog, "#d62728", "backlog (Send-Q) " + std::to_string(t.backlog),
           " class=\"backlog\"" + attr("value", std::to_string(t.backlog)));
  ch.step_line(points, r.run_ms / 1000, svg::series_colours[0],
               t.role + " :" + std::to_string(t.port) + ", peak " + std::to_string(t.peak),
               " data-series=\"accept-queue\"" + attr("points", data));
  ch.legend({{svg::series_colours[0], "Recv-Q, peak " + std::to_string(t.peak)},
             {"#d62728", "Send-Q " + std::to_string(t.backlog)},
             {"#fbd5d5", "full (Recv-Q > Send-Q)"}});
  return ch.svg();
}

// One step line of a per-second chart: a counter's increase in each time bin of the run.
struct rate_line {
  std::vector<double> increase; ///< per bin (bin_ms, bin_count)
  std::string colour;
  std::string name;  ///< in the legend, with the total
  std::string title; ///< the line's hover text
  std::string key;   ///< its data-* attribute naming it ("counter", "listener")
};

// Rates per second over the run, one line per entry; the totals go into data-total so a test can
// hold them against the run's JSON.
std::string rates_chart(const runner::run_result& r, const std::string& kind,
                        const std::string& y_label, const std::vector<rate_line>& lines) {
  const double width_ms = bin_ms(r);
  const std::size_t bins = bin_count(r);
  double top = 1;
  for (const auto& l : lines)
    for (double v : l.increase)
      top = std::max(top, v / (width_ms / 1000));
  const double secs = static_cast<double>(bins) * width_ms / 1000;
  chart ch(kind, secs, top * 1.08, "seconds (bins of " + ms_label(width_ms) + ")", y_label);
  ch.data("bin-ms", exact(width_ms));
  ch.x_ticks(svg::nice_step(secs, 6));
  event_ticks(ch, r);
  std::vector<std::pair<std::string, std::string>> legend;
  for (const auto& l : lines) {
    std::vector<std::pair<double, double>> points;
    double total = 0;
    for (std::size_t b = 0; b < bins && b < l.increase.size(); ++b) {
      points.emplace_back(static_cast<double>(b) * width_ms / 1000,
                          l.increase[b] / (width_ms / 1000));
      total += l.increase[b];
    }
    ch.step_line(points, secs, l.colour, l.title,
                 attr(l.key, l.name) + attr("total", exact(std::round(total))));
    legend.push_back({l.colour, l.name + " (" + num(total) + ")"});
  }
  ch.legend(legend);
  return ch.svg();
}

// Each listener's own drops (sk_drops) per second, for the listeners that dropped: which port
// the namespace's drops came from. Empty when none dropped.
std::string listener_drops_chart(const runner::run_result& r) {
  std::vector<rate_line> lines;
  for (const auto& t : r.listeners) {
    auto inc = svg::increase_per_bin(t.drop_samples, "drops", bin_ms(r), bin_count(r));
    if (std::accumulate(inc.begin(), inc.end(), 0.0) <= 0) continue;
    const std::string name = t.role + " :" + std::to_string(t.port);
    lines.push_back({std::move(inc), svg::series_colours[lines.size() % svg::series_colours.size()],
                     name, name + ": sk_drops (ss -tlm d<N>)", "listener"});
  }
  return lines.empty() ? std::string()
                       : rates_chart(r, "listener-drops", "drops per second (listener)", lines);
}

// The node's ListenOverflows and ListenDrops per second, from the sampler's counter samples.
std::string drops_chart(const runner::run_result& r) {
  std::vector<rate_line> lines;
  for (const auto& [name, colour] : {std::pair{"TcpExtListenOverflows", svg::series_colours[1]},
                                     std::pair{"TcpExtListenDrops", svg::series_colours[9]}})
    lines.push_back({svg::increase_per_bin(r.node_counter_samples, name, bin_ms(r), bin_count(r)),
                     colour, name, std::string(name) + ": " + netstat_words(name), "counter"});
  return rates_chart(r, "drops", "per second (node)", lines);
}

// How a group's connections ended, by the time they were meant to start: stacked bars per bin.
std::string outcomes_chart(const runner::run_result& r, const std::string& group,
                           const clients::client_results& c) {
  double width_ms = bin_ms(r);
  std::size_t bins = bin_count(r);
  std::vector<std::array<double, clients::outcome_count>> count(bins);
  double total = 0;
  for (const auto& rec : c.records) {
    double at = std::chrono::duration<double, std::milli>(rec.intended_start).count();
    auto b = std::min(bins - 1, static_cast<std::size_t>(std::max(0.0, at) / width_ms));
    count[b][static_cast<std::size_t>(rec.kind)] += 1;
    total += 1;
  }
  double top = 1;
  for (const auto& b : count) {
    double sum = 0;
    for (double v : b)
      sum += v;
    top = std::max(top, sum);
  }
  double secs = static_cast<double>(bins) * width_ms / 1000;
  chart ch("outcomes-over-time", secs, top * 1.08,
           "intended start, seconds (bins of " + ms_label(width_ms) + ")", "connections");
  ch.data("group", group);
  ch.data("records", exact(total));
  ch.data("records-dropped", std::to_string(c.records_dropped));
  ch.x_ticks(svg::nice_step(secs, 6));
  event_ticks(ch, r);
  std::array<bool, clients::outcome_count> seen{};
  for (std::size_t b = 0; b < bins; ++b) {
    double base = 0, x0 = static_cast<double>(b) * width_ms / 1000;
    for (std::size_t k = 0; k < clients::outcome_count; ++k) {
      if (count[b][k] == 0) continue;
      seen[k] = true;
      std::string kind(clients::to_string(static_cast<clients::outcome>(k)));
      ch.rect(x0 + width_ms / 1000 * 0.05, base, x0 + width_ms / 1000 * 0.95, base + count[b][k],
              svg::outcome_colours[k],
              num(count[b][k]) + " " + kind + " from " + ms_label(x0 * 1000),
              attr("outcome", kind) + attr("count", exact(count[b][k])));
      base += count[b][k];
    }
  }
  std::vector<std::pair<std::string, std::string>> legend;
  for (std::size_t k = 0; k < clients::outcome_count; ++k)
    if (seen[k])
      legend.push_back({svg::outcome_colours[k],
                        std::string(clients::to_string(static_cast<clients::outcome>(k)))});
  ch.legend(legend);
  return ch.svg();
}

// A latency histogram on a log time axis, so that connects after SYN retransmissions (1 s, 3 s,
// 7 s with the classic timeouts) stand apart from the sub-millisecond ones.
std::string latency_chart(const std::string& kind, const std::string& group,
                          const clients::latency_histogram& h) {
  auto ms = [](std::chrono::nanoseconds ns) {
    return std::chrono::duration<double, std::milli>(ns).count();
  };
  auto buckets = h.buckets();
  double top = 1, x_max = 10'000;
  for (const auto& b : buckets) {
    top = std::max(top, static_cast<double>(b.count));
    if (b.upper != std::chrono::nanoseconds::max()) x_max = std::max(x_max, ms(b.upper));
  }
  x_max = std::pow(10, std::ceil(std::log10(x_max))); // a whole decade: the ticks end there
  const double x_min = 0.01;                          // the histogram's finest bin, 10 us
  chart ch(kind, x_max, top * 1.08, "ms from the intended start (log scale)", "connections", 560,
           220);
  ch.log_x(x_min, x_max);
  ch.data("group", group);
  ch.data("count", std::to_string(h.count()));
  auto s = h.summary();
  ch.data("p50-ms", exact(ms(s.p50)));
  ch.data("p99-ms", exact(ms(s.p99)));
  for (double t = x_min; t <= x_max * 1.0001; t *= 10)
    ch.x_tick(t, ms_label(t));
  int row = 0; // labels one under the other: on a log axis the three lines stand close
  for (double retry : {1000.0, 3000.0, 7000.0})
    if (retry < x_max)
      ch.vline(retry, "#999", "SYN retry " + num(retry / 1000) + " s", row++,
               " class=\"syn-retry\"" + attr("ms", num(retry)));
  for (const auto& b : buckets) {
    double lo = std::max(x_min, ms(b.lower));
    double hi = b.upper == std::chrono::nanoseconds::max() ? x_max : ms(b.upper);
    ch.rect(lo, 0, hi, static_cast<double>(b.count), svg::series_colours[0],
            std::to_string(b.count) + " in [" + ms_label(ms(b.lower)) + ", " +
                (b.upper == std::chrono::nanoseconds::max() ? "..." : ms_label(hi)) + ")",
            attr("count", std::to_string(b.count)));
  }
  ch.legend({{svg::series_colours[0], group + ": " + std::to_string(h.count()) + ", p50 " +
                                          ms_label(ms(s.p50)) + ", p99 " + ms_label(ms(s.p99))}});
  return ch.svg();
}

void write_expectations(std::ostream& out, const runner::run_result& r) {
  out << "<h2 id=\"expectations\">Expectations</h2>\n<table class=\"summary expectations\"><thead>"
         "<tr><th>verdict</th><th>metric</th><th>op</th><th>expected</th><th>measured</th>"
         "<th>what it shows</th></tr></thead><tbody>";
  for (const auto& e : r.expectations) {
    out << "<tr" << attr("metric", e.spec.metric)
        << attr("measured", e.measured ? exact(*e.measured) : "null")
        << attr("expected", e.expected ? exact(*e.expected) : "null")
        << attr("passed", e.passed ? "true" : "false") << "><td class=\""
        << (e.passed ? "pass\">PASS" : "fail\">FAIL") << "</td><td><code>" << esc(e.spec.metric)
        << "</code></td><td>" << esc(std::string(scenario::name_of(e.spec.op)))
        << "</td><td class=\"num\">"
        << (e.spec.other ? "<code>" + esc(*e.spec.other) + "</code> = " : std::string())
        << (e.expected ? esc(readable(*e.expected)) : "-") << "</td><td class=\"num\">"
        << (e.measured ? esc(readable(*e.measured)) : "-") << "</td><td>"
        << esc(e.note.empty() ? e.spec.description : e.note) << "</td></tr>";
  }
  out << "</tbody></table>\n";
}

void write_listener_table(std::ostream& out, const runner::run_result& r) {
  out << "<table class=\"summary listeners\"><thead><tr><th>namespace</th><th>Local "
         "Address:Port</th><th>Send-Q (backlog)</th><th>peak Recv-Q</th><th>full for</th>"
         "<th>first full</th></tr></thead><tbody>";
  for (const auto& t : r.listeners) {
    // The address as `ss` prints it where the final census has the listener.
    std::string local = "*:" + std::to_string(t.port);
    if (auto c = r.census.find(t.role); c != r.census.end())
      for (const auto& l : c->second.listeners)
        if (l.local.port == t.port) local = observer::format_endpoint(l.local, l.v6only);
    out << "<tr><td>" << esc(t.role) << "</td><td>" << esc(local) << "</td><td class=\"num\">"
        << t.backlog << "</td><td class=\"num\">" << t.peak << "</td><td class=\"num\">"
        << num(t.full_ms / 1000) << " s</td><td class=\"num\">"
        << (t.first_full_ms ? num(*t.first_full_ms) + " ms" : "-") << "</td></tr>";
  }
  out << "</tbody></table>\n";
}

void write_counters(std::ostream& out, const runner::run_result& r) {
  out << "<table class=\"summary counters\"><thead><tr><th>namespace</th><th>count</th>"
         "<th><code>netstat -st</code></th><th><code>nstat</code></th></tr></thead><tbody>";
  for (const char* role : {"node", "clients"}) {
    auto it = r.counters.find(role);
    if (it == r.counters.end()) continue;
    for (const auto& name : reported_counters()) {
      auto v = it->second.find(name);
      if (v == it->second.end() || v->second == 0) continue;
      std::int64_t value = v->second;
      std::string words = netstat_words(name);
      out << "<tr" << attr("counter", std::string(role) + "." + name)
          << attr("value", std::to_string(value)) << "><td>" << role << "</td><td class=\"num\">"
          << value << "</td><td>" << esc(words) << "</td><td>" << esc(name) << "</td></tr>";
    }
  }
  out << "</tbody></table>\n";
}

void write_timeline_and_wall(std::ostream& out, const runner::run_result& r) {
  out << "<h2 id=\"timeline\">Timeline</h2>\n<table class=\"summary events\"><thead><tr>"
         "<th>t (ms)</th><th>action</th><th>target</th><th>note</th></tr></thead><tbody>";
  for (const auto& e : r.events)
    out << "<tr><td class=\"num\">" << num(e.at_ms) << "</td><td>" << esc(e.action) << "</td><td>"
        << esc(e.target) << "</td><td>" << esc(e.note) << "</td></tr>";
  out << "</tbody></table>\n";
  double total = 0;
  for (const auto& p : r.wall)
    total += p.ms;
  out << "<h2 id=\"wall\">Where the wall time went</h2>\n<table class=\"summary wall\"><thead>"
         "<tr><th>phase</th><th>ms</th><th>share</th></tr></thead><tbody>";
  for (const auto& p : r.wall)
    out << "<tr" << attr("phase", p.name) << attr("ms", exact(p.ms)) << "><td>" << esc(p.name)
        << "</td><td class=\"num\">" << num(p.ms) << "</td><td class=\"num\">"
        << (total > 0 ? num(100 * p.ms / total) + "%" : "-") << "</td></tr>";
  out << "<tr><td>total</td><td class=\"num\">" << num(total)
      << "</td><td></td></tr></tbody></table>\n";
}

} // namespace

void write_html(std::ostream& out, const runner::run_result& r) {
  std::size_t held = std::count_if(r.expectations.begin(), r.expectations.end(),
                                   [](const auto& e) { return e.passed; });
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>backlog-lab "
         "run: "
      << esc(r.scenario.name) << "</title>\n<style>" << svg::page_style()
      << "</style></head>\n<body>\n<h1>backlog-lab run: " << esc(r.scenario.name) << "</h1>\n<p>"
      << esc(r.scenario.description) << "</p>\n<p>Source " << esc(r.scenario.source) << ", kernel "
      << esc(r.kernel) << ", seed " << r.seed << ", lab built in " << num(r.setup_ms) << " ms, ran "
      << num(r.run_ms / 1000) << " s" << (r.interrupted ? ", INTERRUPTED" : "")
      << ".</p>\n<p class=\"verdict " << (r.passed() ? "pass" : "fail") << "\">"
      << (r.passed() ? "PASS" : "FAIL") << ": " << esc(r.scenario.name) << ", " << held << "/"
      << r.expectations.size() << " expectations held" << (r.interrupted ? " (interrupted)" : "")
      << "</p>\n";

  auto found = findings(r);
  if (!found.empty()) {
    out << "<h2 id=\"findings\">What the kernel saw</h2>\n";
    for (const auto& f : found)
      out << "<p class=\"finding\">" << esc(f) << "</p>\n";
  }
  write_expectations(out, r);

  out << "<h2 id=\"listeners\">Accept queues</h2>\n<p>Every listener the sampler followed, in "
         "<code>ss -ltn</code> terms: Recv-Q is the accept queue, Send-Q the backlog; a queue is "
         "full at backlog + 1. Ticks above the charts over time mark the timeline's events.</p>\n";
  write_listener_table(out, r);
  out << "<div class=\"charts\">";
  for (const auto& t : r.listeners)
    if (t.peak > 0)
      out << "<figure>" << queue_chart(r, t) << "<figcaption>" << esc(t.role) << " *:" << t.port
          << ": Recv-Q over time</figcaption></figure>";
  out << "</div>\n";

  out << "<h2 id=\"drops\">Drops</h2>\n<div class=\"charts\"><figure>" << drops_chart(r)
      << "<figcaption>The node's TcpExtListenOverflows (times the listen queue of a socket "
         "overflowed) and TcpExtListenDrops (SYNs to LISTEN sockets dropped) per "
         "second</figcaption></figure>";
  if (std::string per_listener = listener_drops_chart(r); !per_listener.empty())
    out << "<figure>" << per_listener
        << "<figcaption>Each listener's own drops per second (sk_drops, <code>ss -tlm</code>'s "
           "d&lt;N&gt;): which port the namespace's drops came from</figcaption></figure>";
  out << "</div>\n";
  write_counters(out, r);

  if (!r.clients.empty()) {
    out << "<h2 id=\"clients\">Clients</h2>\n<div class=\"charts\">";
    for (const auto& [name, c] : r.clients)
      out << "<figure>" << outcomes_chart(r, name, c) << "<figcaption>" << esc(name)
          << ": how connections ended, by when they were meant to start"
          << (c.records_dropped ? " (the first " + std::to_string(c.records.size()) + " only)"
                                : std::string())
          << "</figcaption></figure>";
    out << "</div>\n<div class=\"charts\">";
    for (const auto& [name, c] : r.clients) {
      out << "<figure>" << latency_chart("connect-latency", name, c.connect_latency)
          << "<figcaption>" << esc(name)
          << ": connect latency (to the handshake done); a SYN dropped by a full queue is "
             "retransmitted after 1 s, 3 s, 7 s</figcaption></figure>";
      if (c.response_latency.count() > 0)
        out << "<figure>" << latency_chart("response-latency", name, c.response_latency)
            << "<figcaption>" << esc(name)
            << ": response latency (to the complete response)</figcaption></figure>";
    }
    out << "</div>\n";
  }
  write_timeline_and_wall(out, r);
  out << "</body></html>\n";
}

} // namespace backlog_lab::report
