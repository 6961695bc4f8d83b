#include "harness/report/svg.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>

#include "harness/report/report.hpp"

namespace backlog_lab::report::svg {
namespace {

std::string esc(const std::string& s) {
  return xml_escape(s);
}

} // namespace

std::string num(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << v;
  std::string t = s.str();
  if (t.ends_with(".0")) t.resize(t.size() - 2);
  return t == "-0" ? "0" : t;
}

double nice_step(double range, int ticks) {
  if (range <= 0) return 1;
  double raw = range / ticks;
  double p = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

chart::chart(std::string kind, double x_max, double y_max, std::string x_label, std::string y_label,
             double width, double height)
    : kind_(std::move(kind)), w_(width), h_(height), x_max_(x_max > 0 ? x_max : 1),
      y_step_(nice_step(y_max > 0 ? y_max : 1, 4)), x_label_(std::move(x_label)),
      y_label_(std::move(y_label)) {
  y_max_ = std::ceil((y_max > 0 ? y_max : 1) / y_step_) * y_step_;
}

void chart::log_x(double x_min, double x_max) {
  log_x_ = true;
  x_min_ = x_min > 0 ? x_min : 1e-3;
  x_max_ = std::max(x_max, x_min_ * 10);
}

void chart::data(const std::string& name, const std::string& value) {
  data_ += " data-" + name + "=\"" + esc(value) + "\"";
}

double chart::x(double v) const {
  double plot = w_ - left_ - right_;
  if (!log_x_) return left_ + plot * v / x_max_;
  double f = (std::log10(std::max(v, x_min_)) - std::log10(x_min_)) /
             (std::log10(x_max_) - std::log10(x_min_));
  return left_ + plot * std::min(f, 1.0);
}

double chart::y(double v) const {
  return h_ - bottom_ - (h_ - top_ - bottom_) * v / y_max_;
}

void chart::x_tick(double at, const std::string& text) {
  axis_ << "<line x1=\"" << num(x(at)) << "\" y1=\"" << num(h_ - bottom_) << "\" x2=\""
        << num(x(at)) << "\" y2=\"" << num(h_ - bottom_ + 4) << "\" stroke=\"#444\"/><text x=\""
        << num(x(at)) << "\" y=\"" << num(h_ - bottom_ + 16) << "\" text-anchor=\"middle\">"
        << esc(text) << "</text>";
}

void chart::x_ticks(double step, double scale) {
  for (double v = 0; v <= x_max_ + 1e-9; v += step)
    x_tick(v, num(v * scale));
}

void chart::x_category(double at, const std::string& text) {
  axis_ << "<text x=\"" << num(x(at)) << "\" y=\"" << num(h_ - bottom_ + 16)
        << "\" text-anchor=\"middle\">" << esc(text) << "</text>";
}

void chart::rect(double x0, double y0, double x1, double y1, const std::string& fill,
                 const std::string& title, const std::string& attrs) {
  double top = std::min(y(y0), y(y1)), bottom = std::max(y(y0), y(y1));
  marks_ << "<rect class=\"mark\" x=\"" << num(x(x0)) << "\" y=\"" << num(top) << "\" width=\""
         << num(std::max(0.5, x(x1) - x(x0))) << "\" height=\"" << num(std::max(0.5, bottom - top))
         << "\" fill=\"" << fill << "\"" << attrs << ">";
  if (!title.empty()) marks_ << "<title>" << esc(title) << "</title>";
  marks_ << "</rect>";
}

void chart::band(double x0, double x1, const std::string& fill, const std::string& title,
                 const std::string& attrs) {
  marks_ << "<rect x=\"" << num(x(x0)) << "\" y=\"" << num(top_) << "\" width=\""
         << num(std::max(0.5, x(x1) - x(x0))) << "\" height=\"" << num(h_ - top_ - bottom_)
         << "\" fill=\"" << fill << "\"" << attrs << "><title>" << esc(title) << "</title></rect>";
}

void chart::hline(double value, const std::string& colour, const std::string& title,
                  const std::string& attrs) {
  marks_ << "<path d=\"M" << num(left_) << " " << num(y(value)) << "H" << num(w_ - right_)
         << "\" stroke=\"" << colour << "\" stroke-dasharray=\"5 4\" fill=\"none\"" << attrs
         << "><title>" << esc(title) << "</title></path>";
}

void chart::vline(double value, const std::string& colour, const std::string& label, int row,
                  const std::string& attrs) {
  marks_ << "<path d=\"M" << num(x(value)) << " " << num(top_) << "V" << num(h_ - bottom_)
         << "\" stroke=\"" << colour << "\" stroke-dasharray=\"3 3\" fill=\"none\"" << attrs
         << "/><text x=\"" << num(x(value) + 2) << "\" y=\"" << num(top_ + 9 + 11 * row)
         << "\" fill=\"" << colour << "\">" << esc(label) << "</text>";
}

void chart::event_tick(double value, const std::string& title) {
  marks_ << "<path class=\"event\" d=\"M" << num(x(value)) << " " << num(top_) << "v-6\" "
         << "stroke=\"#555\" stroke-width=\"2\"><title>" << esc(title) << "</title></path>";
}

void chart::step_line(const std::vector<std::pair<double, double>>& points, double x_end,
                      const std::string& colour, const std::string& title,
                      const std::string& attrs) {
  if (points.empty()) return;
  std::ostringstream d;
  d << "M" << num(x(points.front().first)) << " " << num(y(points.front().second));
  for (size_t i = 1; i < points.size(); ++i)
    d << "H" << num(x(points[i].first)) << "V" << num(y(points[i].second));
  d << "H" << num(x(std::max(x_end, points.back().first)));
  marks_ << "<path class=\"mark\" d=\"" << d.str() << "\" stroke=\"" << colour
         << "\" stroke-width=\"1.5\" fill=\"none\" opacity=\"0.85\"" << attrs << "><title>"
         << esc(title) << "</title></path>";
}

void chart::whisker(double at, double lo, double hi) {
  if (hi <= lo) return;
  marks_ << "<path class=\"whisker\" d=\"M" << num(x(at)) << " " << num(y(lo)) << "V" << num(y(hi))
         << "M" << num(x(at) - 4) << " " << num(y(lo)) << "h8M" << num(x(at) - 4) << " "
         << num(y(hi)) << "h8\" stroke=\"#000\" fill=\"none\"/>";
}

void chart::legend(const std::vector<std::pair<std::string, std::string>>& entries) {
  double lx = left_;
  for (const auto& [colour, text] : entries) {
    axis_ << "<rect x=\"" << num(lx) << "\" y=\"4\" width=\"10\" height=\"10\" fill=\"" << colour
          << "\"/><text x=\"" << num(lx + 13) << "\" y=\"13\">" << esc(text) << "</text>";
    lx += 22 + 6.2 * static_cast<double>(text.size());
  }
}

std::string chart::svg() const {
  std::ostringstream s;
  s << "<svg class=\"chart\" data-kind=\"" << kind_ << "\"" << data_
    << " xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(w_) << "\" height=\"" << num(h_)
    << "\" viewBox=\"0 0 " << num(w_) << " " << num(h_) << "\" role=\"img\">";
  for (double v = 0; v <= y_max_ + 1e-9; v += y_step_)
    s << "<line x1=\"" << num(left_) << "\" y1=\"" << num(y(v)) << "\" x2=\"" << num(w_ - right_)
      << "\" y2=\"" << num(y(v)) << "\" stroke=\"#e4e4e4\"/><text x=\"" << num(left_ - 5)
      << "\" y=\"" << num(y(v) + 4) << "\" text-anchor=\"end\">" << num(v) << "</text>";
  s << marks_.str();
  s << "<path d=\"M" << num(left_) << " " << num(top_) << "V" << num(h_ - bottom_) << "H"
    << num(w_ - right_) << "\" stroke=\"#444\" fill=\"none\"/>" << axis_.str();
  s << "<text x=\"" << num(left_ + (w_ - left_ - right_) / 2) << "\" y=\"" << num(h_ - 4)
    << "\" text-anchor=\"middle\">" << esc(x_label_) << "</text>";
  s << "<text transform=\"translate(12 " << num(top_ + (h_ - top_ - bottom_) / 2)
    << ") rotate(-90)\" text-anchor=\"middle\">" << esc(y_label_) << "</text></svg>";
  return s.str();
}

std::vector<double> increase_per_bin(const std::vector<runner::counter_sample>& samples,
                                     const std::string& counter, double bin_ms, std::size_t bins) {
  std::vector<double> at_end(bins + 1, 0); // the value at the end of each bin
  std::int64_t last = 0;
  std::size_t bin = 0;
  for (const auto& s : samples) {
    auto it = s.values.find(counter);
    std::int64_t v = it == s.values.end() ? last : it->second;
    while (bin < bins && s.at_ms >= static_cast<double>(bin + 1) * bin_ms)
      at_end[++bin] = static_cast<double>(last);
    last = v;
  }
  while (bin < bins)
    at_end[++bin] = static_cast<double>(last);
  std::vector<double> out(bins);
  for (std::size_t k = 0; k < bins; ++k)
    out[k] = at_end[k + 1] - at_end[k];
  return out;
}

const char* page_style() {
  return "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}"
         "h1{font-size:1.4em}h2{font-size:1.2em;margin-top:1.5em}h3{font-size:1.05em}"
         "table.summary{border-collapse:collapse;font-size:12px}"
         "table.summary th,table.summary td{border:1px solid #ccc;padding:2px 6px}"
         "td.num{text-align:right;white-space:nowrap}.spread{color:#888;font-size:10px}"
         "tr.fail td:last-child{color:#b00;font-weight:bold}"
         ".charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}"
         "figcaption{font-size:12px;color:#555}svg.chart{font:10px sans-serif;background:#fff}"
         "section.cell{border-top:1px solid #ddd;margin-top:1em}"
         ".verdict.pass{color:#070}.verdict.fail{color:#b00}"
         "td.pass{color:#070;font-weight:bold}td.fail{color:#b00;font-weight:bold}"
         "p.finding{max-width:60em}";
}

} // namespace backlog_lab::report::svg
