#pragma once
// Runs the backlog-lab command line in-process and captures what it printed.
#include <string>
#include <vector>

namespace backlog_lab::cli {

/// Exit code and captured output of one command line.
struct outcome {
  int code;
  std::string out;
  std::string err;
};

/// Runs `backlog-lab ARGS...` through cli::run_main, capturing stdout and stderr.
outcome run(std::vector<std::string> args);

/// The whole content of a file ("" if it cannot be read).
std::string read_file(const std::string& path);

} // namespace backlog_lab::cli
