#include "harness/cli/check_cmd.hpp"

#include <iostream>

#include "harness/core/error.hpp"
#include "harness/scenario/reader.hpp"

namespace backlog_lab::cli {
namespace {
// As run_main cuts messages: an error may echo input.
constexpr std::size_t message_bytes = 8000;
} // namespace

void setup_check(CLI::App& app, std::function<int()>& action) {
  auto opts = std::make_shared<check_options>();
  auto* cmd = app.add_subcommand(
      "check", "Read scenarios as `run` would and report each one's first error (no lab, no root)");
  cmd->add_option("scenario", opts->scenarios, "Shipped scenarios' names or scenario files")
      ->required();
  cmd->callback(
      [opts, &action] { action = [opts] { return execute_check(*opts, std::cout, std::cerr); }; });
}

int execute_check(const check_options& o, std::ostream& out, std::ostream& err) {
  bool all_ok = true;
  // Every argument is read even after a failure: one call checks a whole directory of scenarios.
  for (const auto& name : o.scenarios) {
    try {
      auto src = scenario::read_scenario_source(name);
      scenario::parse_scenario(src.text, src.source);
      out << "OK " << printable(name, message_bytes) << "\n";
    } catch (const input_error& e) {
      all_ok = false;
      // One line per argument, newlines escaped too: an argument cannot forge an "OK" line.
      err << "backlog-lab: " << printable(e.what(), message_bytes) << "\n";
    }
  }
  return static_cast<int>(all_ok ? exit_code::ok : exit_code::bad_input);
}

} // namespace backlog_lab::cli
