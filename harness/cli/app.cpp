#include "harness/cli/app.hpp"

#include <CLI/CLI.hpp>
#include <iostream>

#include "harness/cli/check_cmd.hpp"
#include "harness/cli/doctor_cmd.hpp"
#include "harness/cli/export_cmd.hpp"
#include "harness/cli/run_cmd.hpp"
#include "harness/cli/sweep_cmd.hpp"
#include "harness/cli/version.hpp"
#include "harness/core/error.hpp"

#if __has_include("harness/cli/observe_command.hpp")
#include "harness/cli/observe_command.hpp"
#define BACKLOG_LAB_HAVE_OBSERVE 1
#endif

namespace backlog_lab::cli {
namespace {
// Errors echo input and programs' output; a message longer than this is cut (its size shown).
constexpr std::size_t message_bytes = 8000;
} // namespace

int run_main(int argc, char** argv) {
  CLI::App app{"backlog-lab: reproduce TCP accept-queue incidents on a real kernel and assert on "
               "what it saw"};
  app.set_version_flag("--version", version());
  app.require_subcommand(1);
  std::function<int()> action;
  setup_run(app, action);
  setup_sweep(app, action);
  setup_merge(app, action);
  setup_check(app, action);
  setup_export(app, action);
  setup_doctor(app, action);
#ifdef BACKLOG_LAB_HAVE_OBSERVE
  setup_observe(app, action);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e); // prints the message and usage hint
    return static_cast<int>(exit_code::bad_input);
  }
  try {
    return action ? action() : static_cast<int>(exit_code::bad_input);
  } catch (const output_closed&) {
    // `backlog-lab ... | head` with SIGPIPE ignored: end as quietly as SIGPIPE would have.
    return static_cast<int>(exit_code::output_closed);
  } catch (const input_error& e) {
    std::cerr << "backlog-lab: " << printable(e.what(), message_bytes, true) << "\n";
  } catch (const lab_error& e) {
    std::cerr << "backlog-lab: the lab could not be built: "
              << printable(e.what(), message_bytes, true) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "backlog-lab: " << printable(e.what(), message_bytes, true) << "\n";
  }
  return static_cast<int>(exit_code::bad_input);
}

} // namespace backlog_lab::cli
