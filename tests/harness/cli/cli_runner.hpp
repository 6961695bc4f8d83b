#pragma once
// Runs the backlog-lab command line in-process and captures what it printed.
#include <filesystem>
#include <string>
#include <vector>

#include "harness/lab/process.hpp"

namespace backlog_lab::cli {

/// Exit code and captured output of one command line.
struct outcome {
  int code;
  std::string out;
  std::string err;
};

/// Runs `backlog-lab ARGS...` through cli::run_main, capturing stdout and stderr.
outcome run(std::vector<std::string> args);

/// Starts `argv` (argv[0]: a binary's path) as a child process with stdout written to
/// `out_path` and stderr to `err_path` (empty: the test's own stderr; the same path: one file).
lab::child_process spawn_binary(std::vector<std::string> argv, const std::string& out_path,
                                const std::string& err_path = "");

/// A directory of this test process's own under the test temp dir, created on first use and
/// removed with everything in it when the process exits (ctest runs every test case as a process
/// of its own, in parallel).
const std::filesystem::path& scratch_dir();

/// Writes `text` to scratch_dir()/NAME and returns its path.
std::string write_file(const std::string& name, const std::string& text);

/// The whole content of a file ("" if it cannot be read).
std::string read_file(const std::string& path);

} // namespace backlog_lab::cli
