#include "harness/sweep/progress.hpp"

#include <cmath>

namespace backlog_lab::sweep {

std::string duration_text(double ms) {
  long s = std::lround(ms / 1000);
  if (s < 60) return std::to_string(s) + "s";
  std::string sec = std::to_string(s % 60);
  return std::to_string(s / 60) + "m" + (sec.size() < 2 ? "0" : "") + sec + "s";
}

progress_bar::progress_bar(std::ostream& out, bool redraw, std::size_t width)
    : out_(out), redraw_(redraw), width_(std::max<std::size_t>(40, width)) {}

void progress_bar::update(const progress& p) {
  std::string left = p.eta_ms ? "~" + duration_text(*p.eta_ms) + " left" : "estimating";
  if (!p.current) {
    std::string line = "sweep: " + std::to_string(p.cells_done) + "/" +
                       std::to_string(p.cells_total) + " cells in " + duration_text(p.elapsed_ms);
    if (redraw_) {
      out_ << "\r\x1b[K" << line << "\n" << std::flush;
      drawn_ = false;
    } else {
      out_ << line << "\n" << std::flush;
    }
    return;
  }
  std::string label = p.current->label().empty() ? "as written" : p.current->label();
  // The cell's own number: with --jobs or --shard, cells start out of step with cells_done.
  std::string cell = std::to_string(p.current->index + 1) + "/" + std::to_string(p.cells_total);
  if (!redraw_) {
    // A log, not a display: one line when a cell starts.
    if (p.current->index == last_cell_) return;
    last_cell_ = p.current->index;
    out_ << "sweep: cell " << cell << " " << label << " (" << p.repeats << " repeat"
         << (p.repeats > 1 ? "s" : "") << ", " << left << ")\n"
         << std::flush;
    return;
  }
  const std::size_t bar = 20;
  std::size_t filled = p.runs_total    ? bar * p.runs_done / p.runs_total
                       : p.cells_total ? bar * p.cells_done / p.cells_total
                                       : bar;
  std::string line =
      "[" + std::string(filled, '#') + std::string(bar - filled, '.') + "] " + cell + " " + left +
      "  repeat " + std::to_string(p.repeat + 1) + "/" + std::to_string(p.repeats) +
      (p.running > 1 ? " (" + std::to_string(p.running) + " running)" : "") + "  " + label;
  // A line longer than the terminal wraps, and '\r' would then redraw only its last part.
  if (line.size() > width_ - 1) line = line.substr(0, width_ - 4) + "...";
  out_ << "\r\x1b[K" << line << std::flush;
  drawn_ = true;
}

void progress_bar::finish() {
  if (drawn_) out_ << "\n" << std::flush;
  drawn_ = false;
}

} // namespace backlog_lab::sweep
