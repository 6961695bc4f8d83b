#include "harness/cli/version.hpp"

namespace backlog_lab::cli {

const char* version() {
  return "backlog-lab 0.1.0";
}

} // namespace backlog_lab::cli
