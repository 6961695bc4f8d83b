#include "harness/runner/exec_actor.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"

namespace backlog_lab::runner {
namespace {

std::string indent(const std::string& text) {
  if (text.empty()) return "    (nothing)";
  std::string out = "    ";
  for (char c : text) {
    out += c;
    if (c == '\n') out += "    ";
  }
  return out;
}

} // namespace

exec_actor::exec_actor(const scenario::exec_spec& spec, std::string where, std::string role,
                       std::string name, const lab::netns& ns, scenario::template_values values,
                       const std::string& logs_dir)
    : spec_(spec), where_(std::move(where)), role_(std::move(role)), name_(std::move(name)),
      ns_(&ns), values_(std::move(values)), logs_dir_(logs_dir) {
  // Its own directory for the rendered config and whatever it writes (pid files, temp paths,
  // logs of its own); the keeper removes it if backlog-lab dies first.
  std::string safe;
  for (char c : role_ + "-" + name_)
    safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  dir_ = "/tmp/backlog-lab." + std::to_string(::getpid()) + "." + safe;
  std::filesystem::remove_all(dir_);
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw lab_error(where_ + ": cannot create " + dir_ + ": " + ec.message());
  ::chmod(dir_.c_str(), 0755);
  values_.values["dir"] = dir_;
  values_.values["config"] = dir_ + "/config";
  values_.values["name"] = name_;
}

exec_actor::~exec_actor() {
  if (dir_.empty()) return;
  program_ = lab::program();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void exec_actor::ready_when_accepting(std::string address, std::vector<uint16_t> ports) {
  ready_address_ = std::move(address);
  ready_ports_ = std::move(ports);
}

std::string exec_actor::render(const std::string& text, const std::string& where) const {
  return scenario::render_template(text, values_, where_ + where);
}

void exec_actor::write_config() {
  if (spec_.config.empty()) return;
  std::string text;
  for (const auto& line : spec_.config)
    text += line + "\n";
  std::ofstream out(dir_ + "/config", std::ios::trunc);
  out << scenario::render_template(text, values_, where_ + "/config");
  if (!out) throw lab_error(where_ + ": cannot write " + dir_ + "/config");
}

std::string exec_actor::failure(const std::string& what) {
  std::string err = program_.last_lines(true, 10);
  std::string out = program_.last_lines(false, 5);
  std::string msg = where_ + ": '" + program_.command_line() + "' " + what +
                    "\n  last stderr lines:\n" + indent(err);
  if (!out.empty()) msg += "\n  last stdout lines:\n" + indent(out);
  if (logs_dir_.empty()) msg += "\n  (all of its output: run with --logs DIR)";
  return msg;
}

void exec_actor::start() {
  write_config();
  lab::program_spec ps;
  ps.name = role_ + "-" + name_;
  for (size_t k = 0; k < spec_.argv.size(); ++k)
    ps.argv.push_back(render(spec_.argv[k], "/argv/" + std::to_string(k)));
  for (const auto& [k, v] : spec_.env)
    ps.env[k] = render(v, "/env/" + k);
  ps.log_dir = logs_dir_;
  ps.cleanup_dir = dir_;
  try {
    program_ = lab::program::start(ns_, ps);
  } catch (const lab_error& e) {
    throw lab_error(where_ + "/argv: " + e.what());
  }
  ++starts_;
  killed_ = false;
  auto timeout = std::chrono::milliseconds(spec_.ready_timeout_ms);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (uint16_t port : ready_ports_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto r = lab::wait_until_accepting(program_, *ns_, ready_address_, port,
                                       std::max(left, std::chrono::milliseconds(1)));
    if (r == lab::readiness::ready) continue;
    std::string what =
        r == lab::readiness::exited
            ? "exited (code " + std::to_string(program_.exit_code().value_or(-1)) +
                  ") before accepting on " + ready_address_ + ":" + std::to_string(port)
            : "did not accept on " + ready_address_ + ":" + std::to_string(port) + " within " +
                  std::to_string(spec_.ready_timeout_ms) + " ms (ready_timeout_ms)";
    std::string msg = failure(what);
    program_.kill();
    throw lab_error(msg);
  }
  if (ready_ports_.empty()) {
    // Nothing to connect to (a load generator): it must at least not fail at once.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!program_.running() && program_.exit_code().value_or(0) != 0) {
      std::string msg =
          failure("exited (code " + std::to_string(program_.exit_code().value_or(-1)) + ")");
      throw lab_error(msg);
    }
  }
}

void exec_actor::kill() {
  program_.kill();
  killed_ = true;
}

void exec_actor::freeze() {
  program_.freeze();
}

void exec_actor::resume() {
  program_.resume();
}

void exec_actor::restart() {
  program_.kill();
  try {
    start();
  } catch (const std::exception& e) {
    last_error_ = e.what();
  }
}

void exec_actor::reload(const scenario::template_values& values) {
  auto keep = values_.values;
  values_ = values;
  for (const auto& k : {"dir", "config", "name"})
    values_.values[k] = keep[k];
  try {
    write_config();
    if (spec_.reload.signal != 0) {
      program_.signal(spec_.reload.signal);
    } else if (!spec_.reload.command.empty()) {
      std::vector<std::string> argv;
      for (size_t k = 0; k < spec_.reload.command.size(); ++k)
        argv.push_back(render(spec_.reload.command[k], "/reload/command/" + std::to_string(k)));
      auto r = lab::run_command(ns_, argv, {}, std::chrono::seconds(10));
      if (r.exit_status != 0)
        last_error_ =
            where_ + "/reload/command: exited " + std::to_string(r.exit_status) + ": " + r.err;
    }
    ++reloads_;
  } catch (const std::exception& e) {
    last_error_ = e.what();
  }
}

void exec_actor::collect_metrics() {
  if (spec_.metrics_command.empty()) return;
  std::vector<std::string> argv;
  for (size_t k = 0; k < spec_.metrics_command.size(); ++k)
    argv.push_back(render(spec_.metrics_command[k], "/metrics_command/" + std::to_string(k)));
  try {
    auto r = lab::run_command(ns_, argv, {}, std::chrono::seconds(5));
    if (r.exit_status != 0) {
      last_error_ =
          where_ + "/metrics_command: exited " + std::to_string(r.exit_status) + ": " + r.err;
      return;
    }
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream words(line);
      std::string key;
      double value = 0;
      if (words >> key >> value) metrics_[key] = value;
    }
  } catch (const std::exception& e) {
    last_error_ = e.what();
  }
}

std::string exec_actor::state() {
  if (program_.running()) return program_.frozen() ? "frozen" : "running";
  if (killed_) return "killed";
  auto code = program_.exit_code();
  return code ? "exited " + std::to_string(*code) : "not started";
}

program_record exec_actor::record() {
  program_record r;
  r.role = role_;
  r.command = program_.command_line();
  r.state = state();
  r.starts = starts_;
  r.reloads = reloads_;
  r.stderr_tail = program_.last_lines(true, 10);
  r.error = last_error_;
  r.metrics = metrics_;
  return r;
}

std::vector<std::uint32_t> exec_actor::sent_bytes() const {
  std::vector<std::uint32_t> out;
  if (spec_.sent_bytes_log.empty()) return out;
  std::ifstream in(render(spec_.sent_bytes_log, "/sent_bytes_log"));
  std::string line;
  while (std::getline(in, line)) {
    std::string number;
    for (char c : line + " ") {
      if (std::isdigit(static_cast<unsigned char>(c))) {
        number += c;
      } else if (!number.empty()) {
        out.push_back(static_cast<std::uint32_t>(std::stoul(number)));
        number.clear();
      }
    }
  }
  return out;
}

} // namespace backlog_lab::runner
