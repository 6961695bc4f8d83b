#include "proxy_sim/iptables/iptables_proxier.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/sysctl.hpp"
#include "proxy_sim/iptables/rules.hpp"
#include "proxy_sim/node_port.hpp"
#include "proxy_sim/rule_sync_thread.hpp"

namespace backlog_lab::proxy_sim {
namespace {

// Hang guards, not targets: a restore takes ~30 us per line on 2 cores (10,000 Services with one
// endpoint each, 65,000 lines: ~2-3 s); a loaded machine may take several times that.
constexpr auto tool_timeout = std::chrono::seconds(10);
constexpr auto restore_time_per_line = std::chrono::microseconds(500);

std::chrono::milliseconds restore_timeout(const std::string& text) {
  auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  return tool_timeout + std::chrono::duration_cast<std::chrono::milliseconds>(
                            restore_time_per_line * static_cast<long>(lines));
}

// What the tool said, or why there is nothing: a killed tool has often written nothing yet.
std::string tool_says(const lab::command_result& result, std::chrono::milliseconds timeout,
                      std::size_t lines) {
  std::string err = result.err;
  while (!err.empty() && (err.back() == '\n' || err.back() == ' '))
    err.pop_back();
  std::string why;
  if (result.timed_out)
    why = "killed after " + std::to_string(timeout.count()) + " ms (the limit for " +
          std::to_string(lines) + " lines of input)";
  else if (result.exit_status != 0)
    why = "exit status " + std::to_string(result.exit_status);
  if (err.empty()) return why + "; nothing on stderr";
  return why + "; stderr: " + err;
}

// The input line iptables-restore names in "line N failed" (a parse error) or "line N:
// RULE_APPEND failed" (the nf_tables variant's commit error); 0 if it names none.
std::size_t failing_line_number(const std::string& err) {
  // "line 18 failed" (legacy), "line 18: CHAIN_DEL failed (...)" (nf_tables). Plain search
  // rather than std::regex, whose recursive matcher can overflow the stack on long input.
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  auto is_op = [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; };
  for (auto at = err.find("line "); at != std::string::npos; at = err.find("line ", at + 1)) {
    std::size_t i = at + 5, digits = i;
    while (i < err.size() && is_digit(err[i]))
      ++i;
    if (i == digits || i - digits > 9) continue; // none, or more than any ruleset has lines
    std::size_t number_end = i;
    if (err.compare(i, 2, ": ") == 0 && i + 2 < err.size() && is_op(err[i + 2])) {
      i += 2;
      while (i < err.size() && is_op(err[i]))
        ++i;
    }
    if (err.compare(i, 7, " failed") == 0)
      return std::stoul(err.substr(digits, number_end - digits));
  }
  return 0;
}

// That line of `text`, for the error message.
std::string failing_line(const std::string& err, const std::string& text) {
  std::size_t wanted = failing_line_number(err), n = 1, start = 0;
  if (wanted == 0) return {};
  while (n < wanted && start != std::string::npos) {
    start = text.find('\n', start);
    if (start != std::string::npos) ++start;
    ++n;
  }
  if (start == std::string::npos) return {};
  return text.substr(start, text.find('\n', start) - start);
}

class iptables_proxier final : public proxier {
public:
  iptables_proxier(net::io_context& io, const lab::netns& node, const scenario::proxy_spec& spec,
                   std::vector<service_endpoints> services)
      : node_(node.duplicate()), spec_(spec), options_(iptables::make_rule_options(spec, services)),
        services_(std::move(services)), sync_timer_(io), nat_commit_timer_(io), io_(io), tool_(io) {
    if (spec.backlog < -1)
      throw input_error("/proxy/backlog", "-1 (somaxconn, as Go's net.Listen) or a backlog >= 0");
    iptables::validate_services(services_);
  }

  ~iptables_proxier() override {
    try {
      stop();
    } catch (...) {
      // The namespace goes away with its rules anyway; nothing more to do in a destructor.
    }
  }

  void start() override {
    if (started_) return;
    started_ = true;
    // NewProxier: "Set the route_localnet sysctl we need for" localhost NodePorts, so that a
    // node-local client's 127.0.0.1:NodePort can be DNATed to a pod (docs/proxy-iptables.md).
    lab::write_sysctl(node_, "net.ipv4.conf.all.route_localnet", "1");
    sync_rules();
    tool_.finish(); // the install completes before start() returns
  }

  void update_endpoints(const std::string& service, std::vector<tcp::endpoint> endpoints) override {
    auto it = std::find_if(services_.begin(), services_.end(),
                           [&](const service_endpoints& s) { return s.service == service; });
    if (it == services_.end())
      throw input_error("update_endpoints",
                        "a service of this proxier; \"" + service + "\" is not one");
    service_endpoints changed = *it;
    changed.endpoints = std::move(endpoints);
    iptables::validate_services({changed});
    *it = std::move(changed);
    schedule_sync();
  }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    sync_timer_.cancel();
    nat_commit_timer_.cancel();
    tool_.finish(); // a restore in flight lands first, so the teardown sees what it committed
    // Closing a listener resets every connection still in its accept queue
    // (docs/reference/kernel.md 3).
    for (auto& [port, socket] : held_) {
      boost::system::error_code ignored;
      socket.close(ignored);
    }
    held_.clear();
    if (filter_linked_ || nat_linked_) {
      // A sync may have committed its filter table and not its nat one: remove what is there.
      installed_.filter_chains.insert(pending_filter_chains_.begin(), pending_filter_chains_.end());
      std::string text = iptables::render_teardown(installed_, options_, true);
      if (!filter_linked_ || !nat_linked_) text = without_table_jumps(text, !filter_linked_);
      throw_on_error(apply(text), "teardown");
      filter_linked_ = nat_linked_ = false;
      installed_ = {};
    }
  }

  proxier_stats stats() const override { return stats_; }

  bool sync_running() const override { return tool_.busy(); }

  std::string rules_listing() const override {
    // Listing costs about what installing did: the same guard.
    const auto timeout = restore_timeout(installed_.text);
    auto result = lab::run_command(&node_, {"iptables", "-t", "nat", "-S"}, {}, timeout);
    if (result.exit_status != 0 || result.timed_out)
      throw lab_error("iptables -t nat -S in namespace '" + node_.name() +
                      "' failed: " + tool_says(result, timeout, 0));
    return result.out;
  }

private:
  // The NodePorts not yet held, each opened in the release's shape (`[::]:node_port` dual stack
  // like Go's net.Listen("tcp", ":N"), or 1.20's "tcp4" `0.0.0.0:node_port`) before the rules
  // are restored, as syncProxyRules() did (#108496, item 1). Returns the ports this call opened.
  std::vector<uint16_t> hold_node_ports() {
    std::vector<uint16_t> opened;
    if (!iptables::holds_node_ports(options_.version)) return opened;
    const int backlog = node_port_backlog(spec_, node_);
    for (const auto& s : services_) {
      if (s.node_port == 0 || held_.count(s.node_port)) continue;
      tcp::acceptor socket(io_);
      // Held and never accept()ed: that is the point.
      listen_node_port(socket, node_, s.node_port, backlog,
                       "holding NodePort " + std::to_string(s.node_port) + " of \"" + s.service +
                           "\" in namespace '" + node_.name() + "'",
                       iptables::held_socket_shape(options_.version));
      held_.emplace(s.node_port, std::move(socket));
      opened.push_back(s.node_port);
    }
    return opened;
  }

  // Endpoint changes wait for the sync delay; changes arriving meanwhile ride on the same sync.
  // Until it runs, the old rules stay in force (docs/reference/kube-proxy.md section 5).
  void schedule_sync() {
    if (!started_ || stopped_) return;
    if (restoring_) { // a restore is running or waits for its nat commit: one more follows it
      resync_ = true;
      return;
    }
    if (sync_pending_) return;
    sync_pending_ = true;
    sync_timer_.expires_after(std::chrono::milliseconds(spec_.sync_delay_ms));
    std::weak_ptr<bool> alive = alive_;
    sync_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
      if (ec || alive.expired()) return; // cancelled, or the proxier is gone
      sync_pending_ = false;
      if (stopped_) return;
      if (restoring_)
        resync_ = true;
      else
        sync_rules();
    });
  }

  // A full rewrite of every chain of ours, like syncProxyRules(): one iptables-restore input,
  // filter then nat. iptables-restore commits each table at its COMMIT line (measured with
  // Debian 12's iptables-nft-restore as with legacy iptables: docs/proxy-iptables.md), so
  // between the two commits the new filter rules meet the old nat rules. nat_commit_delay_ms
  // makes that gap as long as a big nat table's restore: the filter section is restored, then
  // the nat section that long after.
  void sync_rules() {
    const auto begin = std::chrono::steady_clock::now();
    std::vector<uint16_t> opened = hold_node_ports();
    auto plan = std::make_shared<iptables::restore_plan>(
        iptables::render_sync(services_, options_, installed_.nat_chains, !nat_linked_));
    std::string text =
        filter_linked_ && !nat_linked_ ? without_table_jumps(plan->text, true) : plan->text;
    const std::size_t nat_at = text.find("*nat\n");
    restoring_ = true;
    if (spec_.nat_commit_delay_ms == 0 || !nat_linked_) {
      tool_.run([this, text] { return apply(text); },
                [this, text, nat_at, plan, opened, begin](const std::string& error) {
                  if (!error.empty()) {
                    // Lines before the nat section are filter's, committed at its COMMIT.
                    // Lines of the input as restored: restore_input adds one per table.
                    const std::string filter_input =
                        iptables::restore_input(text.substr(0, nat_at));
                    std::size_t line = failing_line_number(error);
                    if (line > static_cast<std::size_t>(
                                   std::count(filter_input.begin(), filter_input.end(), '\n')))
                      note_filter_committed(*plan);
                    sync_failed(error, opened);
                  } else {
                    note_filter_committed(*plan);
                    sync_done(std::move(*plan), begin);
                  }
                  restore_finished();
                });
      return;
    }
    tool_.run([this, filter = text.substr(0, nat_at)] { return apply(filter); },
              [this, plan, opened, begin, nat = text.substr(nat_at)](const std::string& error) {
                if (!error.empty()) {
                  sync_failed(error, opened);
                  return restore_finished();
                }
                note_filter_committed(*plan);
                commit_nat_later(plan, opened, begin, nat);
              });
  }

  // The nat section, nat_commit_delay_ms after the filter commit (see sync_rules).
  void commit_nat_later(std::shared_ptr<iptables::restore_plan> plan, std::vector<uint16_t> opened,
                        std::chrono::steady_clock::time_point begin, std::string nat) {
    nat_commit_timer_.expires_after(std::chrono::milliseconds(spec_.nat_commit_delay_ms));
    std::weak_ptr<bool> alive = alive_;
    nat_commit_timer_.async_wait([this, alive, begin, opened, plan,
                                  nat = std::move(nat)](const boost::system::error_code& ec) {
      if (ec || alive.expired()) return;
      if (stopped_) return;
      tool_.run([this, nat] { return apply(nat); },
                [this, plan, opened, begin](const std::string& error) {
                  if (!error.empty())
                    sync_failed(error, opened);
                  else
                    sync_done(std::move(*plan), begin);
                  restore_finished();
                });
    });
  }

  // The sync is over (committed or failed): one more follows if endpoints changed meanwhile.
  void restore_finished() {
    restoring_ = false;
    if (resync_ && !stopped_) {
      resync_ = false;
      schedule_sync();
    }
  }

  void note_filter_committed(const iptables::restore_plan& plan) {
    filter_linked_ = true;
    pending_filter_chains_ = plan.filter_chains;
  }

  void sync_done(iptables::restore_plan plan, std::chrono::steady_clock::time_point begin) {
    stats_.rule_sync_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
            .count());
    nat_linked_ = true;
    installed_ = std::move(plan);
    ++stats_.rule_syncs;
  }

  // kube-proxy logged the failure, closed the ports this sync had opened (revertPorts: "only
  // closes the ports opened in this sync") and kept running on the rules in place; so does the
  // proxier. The next endpoint change retries, with those ports opened again.
  void sync_failed(const std::string& error, const std::vector<uint16_t>& opened) {
    ++stats_.rule_sync_failures;
    if (stats_.sync_errors.size() < 5) stats_.sync_errors.push_back(error);
    for (uint16_t port : opened) {
      boost::system::error_code ignored;
      held_.at(port).close(ignored);
      held_.erase(port);
    }
  }

  // `text` without the `-I`/`-D` jumps from built-in chains in its filter section (`filter`) or
  // its nat section: for a table whose jumps are in place while the other's are not.
  static std::string without_table_jumps(const std::string& text, bool filter) {
    std::string out;
    std::istringstream in(text);
    bool in_table = false;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line[0] == '*') in_table = line == (filter ? "*filter" : "*nat");
      if (in_table && (line.rfind("-I ", 0) == 0 || line.rfind("-D ", 0) == 0)) continue;
      out += line + "\n";
    }
    return out;
  }

  // --noflush: only the chains we declare are flushed, as kube-proxy did, so rules others put
  // in the node's tables (the topology's, a test's) survive our syncs. `rendered` goes in as
  // iptables::restore_input makes it (one listing line per table:
  // docs/proxy-iptables.md#sync-cost), so a failing line number counts that input's lines. Returns
  // the error, or an empty string.
  std::string apply(const std::string& rendered) const {
    const std::string text = iptables::restore_input(rendered);
    const auto timeout = restore_timeout(text);
    auto result = lab::run_command(&node_, {"iptables-restore", "--noflush"}, text, timeout);
    if (result.exit_status == 0 && !result.timed_out) return {};
    std::string line = failing_line(result.err, text);
    auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    return "iptables-restore in namespace '" + node_.name() +
           "' failed: " + tool_says(result, timeout, lines) +
           (line.empty() ? "" : " [input: " + line + "]");
  }

  void throw_on_error(const std::string& error, const char* what) const {
    if (!error.empty()) throw lab_error(std::string(what) + ": " + error);
  }

  lab::netns node_;
  scenario::proxy_spec spec_;
  iptables::rule_options options_;
  std::vector<service_endpoints> services_; ///< desired state; rules follow at the next sync
  net::steady_timer sync_timer_;
  net::steady_timer nat_commit_timer_;
  net::io_context& io_;
  std::map<uint16_t, tcp::acceptor> held_;      ///< by NodePort
  iptables::restore_plan installed_;            ///< the last sync whose nat table was committed
  std::set<std::string> pending_filter_chains_; ///< filter chains of the last filter commit
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool started_ = false;
  bool stopped_ = false;
  bool filter_linked_ = false; ///< filter's jumps from the built-in chains are in place
  bool nat_linked_ = false;    ///< nat's are
  bool sync_pending_ = false;
  bool restoring_ = false; ///< a sync is running (its restore, or its nat commit's wait)
  bool resync_ = false;    ///< endpoints changed meanwhile
  proxier_stats stats_;
  rule_sync_thread tool_; ///< last: destroyed first, so no completion outlives the members
};

} // namespace

std::unique_ptr<proxier> make_iptables_proxier(net::io_context& io, const lab::netns& node,
                                               const scenario::proxy_spec& spec,
                                               std::vector<service_endpoints> services) {
  return std::make_unique<iptables_proxier>(io, node, spec, std::move(services));
}

} // namespace backlog_lab::proxy_sim
