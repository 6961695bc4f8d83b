#pragma once
// A scenario's program in its role (backend pod, node proxy, client): its configuration
// rendered from the scenario's template, its process tree (lab/program.hpp), its readiness, its
// faults and reloads. The runner holds one per exec backend, exec proxy and exec client.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "harness/lab/program.hpp"
#include "harness/runner/run_result.hpp"
#include "harness/scenario/config_template.hpp"
#include "harness/scenario/exec_spec.hpp"

namespace backlog_lab::runner {

/// One program of a run; killed (its whole tree) and its directory removed when destroyed.
class exec_actor {
public:
  /// `where` is "SOURCE: /backends/2/exec" for messages; `values` the placeholders of its role
  /// ({{dir}}, {{config}} and {{name}} are added here); `logs_dir` may be empty.
  exec_actor(const scenario::exec_spec& spec, std::string where, std::string role, std::string name,
             const lab::netns& ns, scenario::template_values values, const std::string& logs_dir);
  exec_actor(exec_actor&&) noexcept = default;
  exec_actor& operator=(exec_actor&&) noexcept = default;
  ~exec_actor();

  /// Where readiness is checked: connections from the program's namespace to these.
  void ready_when_accepting(std::string address, std::vector<uint16_t> ports);
  /// Renders the config, starts the program and waits until it is ready. Throws lab_error
  /// naming the JSON path, the command and its last stderr lines if it cannot be started, exits
  /// first or is not ready in time; nothing of it is left running then.
  void start();
  /// kill (SIGKILL to the whole tree), freeze, resume (SIGSTOP/SIGCONT to every process).
  void kill();
  void freeze();
  void resume();
  /// Kills it if running and starts it again (waits for readiness; a failure is logged in
  /// the record, not thrown: the run goes on as it would with a crash-looping pod).
  void restart();
  /// Re-renders the config with `values` (the lists of endpoints have changed) and applies
  /// it: the spec's reload signal, or its reload command run in the same namespace.
  void reload(const scenario::template_values& values);
  /// The values the templates see (to update and pass to reload()).
  const scenario::template_values& values() const noexcept { return values_; }

  /// What happened to it, for the report.
  program_record record();
  /// The bytes-sent log's numbers (every integer of every line), empty if none was configured.
  std::vector<std::uint32_t> sent_bytes() const;
  /// Runs the spec's metrics_command (if any, and if the program runs) and keeps its output
  /// for record(); a failure is kept as the record's error.
  void collect_metrics();
  /// "running", "frozen", "killed" or "exited N".
  std::string state();

private:
  std::string render(const std::string& text, const std::string& where) const;
  void write_config();
  std::string failure(const std::string& what);

  scenario::exec_spec spec_;
  std::string where_;
  std::string role_;
  std::string name_;
  const lab::netns* ns_ = nullptr;
  scenario::template_values values_;
  std::string logs_dir_;
  std::string dir_;
  lab::program program_;
  std::string ready_address_;
  std::vector<uint16_t> ready_ports_;
  int starts_ = 0;
  int reloads_ = 0;
  bool killed_ = false;
  std::string last_error_;
  std::map<std::string, double> metrics_;
};

} // namespace backlog_lab::runner
