#pragma once
// The sweep's progress line on stderr: a bar of cells done, the current cell and the time left.
#include <ostream>
#include <string>

#include "harness/sweep/sweep.hpp"

namespace backlog_lab::sweep {

/// "1m05s", "42s".
std::string duration_text(double ms);

/// Draws progress: redrawn in place with '\r' on a terminal, else one line per cell.
class progress_bar {
public:
  /// `redraw`: the stream is a terminal; `width`: its columns (lines are cut to fit).
  progress_bar(std::ostream& out, bool redraw, std::size_t width = 100);
  /// Shows `p`; call it from sweep_options::on_progress.
  void update(const progress& p);
  /// Ends a redrawn line so later output starts on a fresh one.
  void finish();

private:
  std::ostream& out_;
  bool redraw_;
  std::size_t width_;
  bool drawn_ = false;
  std::size_t last_cell_ = static_cast<std::size_t>(-1);
};

} // namespace backlog_lab::sweep
