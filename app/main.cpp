// backlog-lab: everything lives in the libraries; this only hands over argv.
#include "harness/cli/app.hpp"

int main(int argc, char** argv) {
  return backlog_lab::cli::run_main(argc, argv);
}
