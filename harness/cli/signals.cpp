#include "harness/cli/signals.hpp"

#include <csignal>

namespace backlog_lab::cli {
namespace {

std::atomic<bool> stop_flag{false};

extern "C" void on_stop_signal(int sig) {
  if (stop_flag.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

} // namespace

scoped_stop_signals::scoped_stop_signals() {
  stop_flag = false;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

scoped_stop_signals::~scoped_stop_signals() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

const std::atomic<bool>& scoped_stop_signals::requested() const noexcept {
  return stop_flag;
}

} // namespace backlog_lab::cli
