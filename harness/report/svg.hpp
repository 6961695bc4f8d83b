#pragma once
// Inline SVG charts for the self-contained HTML pages of `run --html` and `sweep --html`: no
// scripts, no fonts or styles from elsewhere, so a page opens offline and renders the same in any
// browser. Marks carry class "mark" and charts data-* attributes, so tests can read them back.
#include <array>
#include <cstddef>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "harness/runner/run_result.hpp"

namespace backlog_lab::report::svg {

/// A number for SVG coordinates and labels: one decimal at most, "-0" as "0".
std::string num(double v);

/// A round axis step for `range` in about `ticks` steps: 1, 2 or 5 times a power of ten.
double nice_step(double range, int ticks);

/// Colours for series (repeats, percentiles, listeners), in order.
inline constexpr std::array<const char*, 10> series_colours = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#d62728"};
/// A colour per client outcome, in clients::outcome order.
inline constexpr std::array<const char*, 8> outcome_colours = {
    "#2ca02c", "#d62728", "#ff7f0e", "#bcbd22", "#9467bd", "#8c564b", "#7f7f7f", "#c7c7c7"};

/// An SVG chart with a plot area, a linear y scale from 0, a linear (or logarithmic) x scale, a
/// y grid and axes; marks are appended as SVG text in plot coordinates via x() and y().
class chart {
public:
  /// A chart of x in [0, x_max] and y in [0, y_max rounded up to a tick]; `kind` becomes its
  /// data-kind attribute.
  chart(std::string kind, double x_max, double y_max, std::string x_label, std::string y_label,
        double width = 420, double height = 220);

  /// Makes the x scale logarithmic over [x_min, x_max] (x_min > 0); x() clamps below x_min.
  void log_x(double x_min, double x_max);
  /// Adds a data-NAME="VALUE" attribute to the <svg> element (VALUE is escaped).
  void data(const std::string& name, const std::string& value);

  /// The SVG x coordinate of a data value.
  double x(double v) const;
  /// The SVG y coordinate of a data value.
  double y(double v) const;
  /// The top of the plot area (SVG y).
  double plot_top() const { return top_; }
  /// The bottom of the plot area (SVG y).
  double plot_bottom() const { return h_ - bottom_; }

  /// Ticks and labels every `step` along x from 0, labelled v * scale.
  void x_ticks(double step, double scale = 1);
  /// A tick label at `at` (a category axis).
  void x_category(double at, const std::string& text);
  /// A tick with a label at `at`.
  void x_tick(double at, const std::string& text);

  /// Raw SVG marks, in SVG coordinates.
  void add(const std::string& svg) { marks_ << svg; }
  /// A bar (class "mark") from (x0, y0) to (x1, y1) in data values, with a tooltip.
  void rect(double x0, double y0, double x1, double y1, const std::string& fill,
            const std::string& title = "", const std::string& attrs = "");
  /// A shaded band over the whole plot height from x0 to x1 (data values), with a tooltip.
  void band(double x0, double x1, const std::string& fill, const std::string& title,
            const std::string& attrs = "");
  /// A horizontal dashed line at `value` across the plot, with a tooltip.
  void hline(double value, const std::string& colour, const std::string& title,
             const std::string& attrs = "");
  /// A vertical dashed line at `value` over the plot height, labelled at its top in text row
  /// `row` (0 first), so that the labels of close lines do not overlap.
  void vline(double value, const std::string& colour, const std::string& label, int row = 0,
             const std::string& attrs = "");
  /// A small grey tick at the top of the plot at `value` with a tooltip: a timeline event.
  void event_tick(double value, const std::string& title);
  /// A step line (class "mark") through (x, y) points, held flat to x_end; nothing if empty.
  void step_line(const std::vector<std::pair<double, double>>& points, double x_end,
                 const std::string& colour, const std::string& title,
                 const std::string& attrs = "");
  /// A min..max whisker at `at`.
  void whisker(double at, double lo, double hi);
  /// Coloured squares with text above the plot.
  void legend(const std::vector<std::pair<std::string, std::string>>& entries);

  /// The whole <svg> element.
  std::string svg() const;

private:
  std::string kind_;
  double w_, h_;
  double left_ = 52, right_ = 12, top_ = 22, bottom_ = 38;
  double x_min_ = 0, x_max_, y_max_ = 1, y_step_;
  bool log_x_ = false;
  std::string x_label_, y_label_, data_;
  std::ostringstream marks_, axis_;
};

/// The increase of a cumulative counter in each of `bins` bins of `bin_ms` from the start, read
/// from samples of its value since the start (run_result::node_counter_samples); a sample
/// without the counter keeps the last value.
std::vector<double> increase_per_bin(const std::vector<runner::counter_sample>& samples,
                                     const std::string& counter, double bin_ms, std::size_t bins);

/// The CSS both pages share.
const char* page_style();

} // namespace backlog_lab::report::svg
