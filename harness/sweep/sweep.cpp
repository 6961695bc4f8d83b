#include "harness/sweep/sweep.hpp"

#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <iostream>

#include "harness/core/error.hpp"
#include "harness/core/unique_fd.hpp"
#include "harness/expect/expect.hpp"
#include "harness/runner/runner.hpp"
#include "harness/sweep/report.hpp"

namespace backlog_lab::sweep {
namespace {

using clock = std::chrono::steady_clock;

double ms_since(clock::time_point t) {
  return std::chrono::duration<double, std::milli>(clock::now() - t).count();
}

bool stop_asked(const sweep_options& o) {
  return o.stop_requested && o.stop_requested->load();
}

// Drops what the sweep's reports never read, so 36 runs stay small in memory.
void trim(runner::run_result& r) {
  for (auto& [role, c] : r.census)
    c.sockets.clear();
  for (auto& [name, c] : r.clients)
    c.records.clear();
}

} // namespace

summary summarise(const std::vector<double>& values) {
  summary s;
  s.values = values;
  s.n = values.size();
  if (s.n == 0) return s;
  s.min = s.max = values.front();
  double sum = 0;
  for (double v : values) {
    sum += v;
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  s.mean = sum / static_cast<double>(s.n);
  if (s.n > 1) {
    double sq = 0;
    for (double v : values)
      sq += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(sq / static_cast<double>(s.n - 1));
  }
  return s;
}

bool sweep_result::passed() const {
  if (interrupted || !error.empty() || runs_finished() != runs_planned) return false;
  for (const auto& c : cells)
    if (!c.passed()) return false;
  return true;
}

const std::vector<std::string>& outcome_names() {
  static const std::vector<std::string> names = {"answered",     "syn_unanswered", "unanswered",
                                                 "closed_early", "refused",        "reset",
                                                 "other",        "aborted"};
  return names;
}

std::vector<std::string> default_metrics(const runner::run_result& first) {
  std::vector<std::string> m = {
      "counter.node.TcpExtListenOverflows", "counter.node.TcpExtListenDrops",
      "counter.node.TcpExtTCPReqQFullDrop", "counter.node.TcpExtSyncookiesSent",
      "counter.node.TcpExtEmbryonicRsts",   "counter.clients.TcpExtTCPSynRetrans"};
  for (const auto& g : first.scenario.clients) {
    std::string p = "clients." + g.name + ".";
    for (const char* o : {"answered", "syn_unanswered", "unanswered", "reset", "refused", "other"})
      m.push_back(p + o + "_share");
    m.push_back(p + "connect_ms.p50");
    m.push_back(p + "connect_ms.p99");
  }
  for (const auto& t : first.listeners) {
    if (t.role != "node") continue;
    std::string p = "listener.node." + std::to_string(t.port) + ".";
    m.push_back(p + "backlog");
    m.push_back(p + "accept_queue_peak");
    m.push_back(p + "full_ms");
  }
  return m;
}

shard_spec parse_shard(const std::string& text) {
  auto slash = text.find('/');
  std::size_t i = 0, n = 0;
  try {
    std::size_t used = 0;
    if (slash != std::string::npos) {
      i = std::stoul(text.substr(0, slash), &used);
      if (used != slash) i = 0;
      n = std::stoul(text.substr(slash + 1), &used);
      if (used != text.size() - slash - 1) n = 0;
    }
  } catch (const std::exception&) {
    i = n = 0;
  }
  if (i < 1 || n < 1 || i > n || n > 100000)
    throw input_error("--shard " + text, "I/N with 1 <= I <= N (e.g. 2/4)");
  return {i, n};
}

std::vector<run_slot> shard_runs(std::size_t cells, std::size_t repeat, const shard_spec& shard) {
  std::vector<run_slot> out;
  for (std::size_t k = 0; k < cells * repeat; ++k)
    if (k % shard.count + 1 == shard.index) out.push_back({k / repeat, k % repeat});
  return out;
}

std::size_t sweep_result::runs_finished() const {
  std::size_t n = 0;
  for (const auto& c : cells)
    n += c.runs.size();
  return n;
}

void summarise_cell(cell_result& c, const std::vector<std::string>& metrics) {
  c.metrics.clear();
  for (const auto& name : metrics) {
    std::vector<double> values;
    for (const auto& r : c.runs)
      if (auto v = expect::lookup(r.metrics, name)) values.push_back(*v);
    if (!values.empty()) c.metrics[name] = summarise(values);
  }
}

std::size_t usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
}

void assess_interference(sweep_result& r, bool same_machine) {
  auto& p = r.parallel;
  p.cpus = usable_cpus();
  double cpu = 0;
  bool measured = false;
  p.max_start_lag_ms = 0;
  p.lagging_runs = 0;
  p.notes.clear();
  std::vector<std::string> lagging;
  for (const auto& c : r.cells)
    for (const auto& i : c.info) {
      if (i.cpu_ms && same_machine) {
        cpu += *i.cpu_ms;
        measured = true;
      }
      if (!i.start_lag_ms) continue;
      p.max_start_lag_ms = std::max(p.max_start_lag_ms, *i.start_lag_ms);
      if (*i.start_lag_ms > interference::lag_limit_ms) {
        ++p.lagging_runs;
        if (lagging.size() < 8)
          lagging.push_back("cell " + std::to_string(c.settings.index + 1) + " repeat " +
                            std::to_string(i.repeat + 1));
      }
    }
  p.busy_cpus = measured && r.elapsed_ms > 0 ? cpu / r.elapsed_ms : 0;
  auto fixed = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", v);
    return std::string(b);
  };
  if (p.jobs > p.cpus && same_machine)
    p.notes.push_back(std::to_string(p.jobs) + " jobs on " + std::to_string(p.cpus) +
                      " CPUs: runs may wait for a CPU and measure the wait");
  if (p.jobs > 1 && measured && p.busy_cpus > 0.5 * static_cast<double>(p.cpus))
    p.notes.push_back("the runs kept " + fixed(p.busy_cpus) + " of " + std::to_string(p.cpus) +
                      " CPUs busy on average: too little to spare for " + std::to_string(p.jobs) +
                      " jobs");
  if (p.lagging_runs > 0) {
    std::string which;
    for (const auto& l : lagging)
      which += (which.empty() ? "" : ", ") + l;
    if (p.lagging_runs > lagging.size()) which += ", ...";
    p.notes.push_back(std::to_string(p.lagging_runs) + " run(s) started connections more than " +
                      fixed(interference::lag_limit_ms) + " ms late (worst " +
                      fixed(p.max_start_lag_ms) + " ms: " + which +
                      "): the CPU was short, their figures may be disturbed" +
                      (p.jobs > 1 ? "; re-run them with --jobs 1" : ""));
  }
}

namespace {

// Everything needed to turn one finished run into part of a cell.
struct run_done {
  run_slot slot;
  runner::run_result result;
  run_info info;
};

std::optional<double> start_lag(const runner::run_result& r) {
  return expect::lookup(r.metrics, "max:clients.*.max_start_lag_ms");
}

double seconds_of(const timeval& t) {
  return static_cast<double>(t.tv_sec) * 1000.0 + static_cast<double>(t.tv_usec) / 1000.0;
}

double cpu_ms_of(const rusage& u) {
  return seconds_of(u.ru_utime) + seconds_of(u.ru_stime);
}

double cpu_now_ms() {
  rusage self{}, children{};
  ::getrusage(RUSAGE_SELF, &self);
  ::getrusage(RUSAGE_CHILDREN, &children);
  return cpu_ms_of(self) + cpu_ms_of(children);
}

// A run in a child process of its own: the child runs the scenario (fresh namespaces, as
// in-process), writes the run's JSON record (run_to_json) to a pipe and _exits; the parent
// reads it back. SIGTERM to the child stops its run cleanly, as Ctrl-C does in-process.
struct child_run {
  run_slot slot;
  pid_t pid = -1;
  unique_fd fd; ///< the read end of the pipe its result comes through
  std::string data;
  clock::time_point started;
};

[[noreturn]] void child_main(int fd, const cell& c, const runner::run_options& ro) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // A process group of its own: Ctrl-C on the terminal reaches the sweep only, which stops each
  // run with one SIGTERM (a second signal would kill the run before its teardown).
  ::setpgid(0, 0);
  nlohmann::json out;
  int code = 0;
  try {
    runner::run_result result = runner::run_scenario(c.scenario, ro);
    trim(result);
    out = {{"run", run_to_json(result, run_info{})}};
  } catch (const std::exception& e) {
    out = {{"error", e.what()}};
    code = 3;
  }
  std::string text = out.dump();
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(4);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::_exit(code);
}

} // namespace

sweep_result run_sweep(const plan& p, const sweep_options& o) {
  sweep_result out;
  out.source = p.source;
  out.scenario = p.cells.empty() ? "" : p.cells.front().scenario.name;
  out.seed = o.seed;
  out.repeat = std::max<std::size_t>(1, o.repeat);
  out.axes = p.axes;
  out.metrics = o.metrics;
  out.cells_planned = p.cells.size();
  out.shard = o.shard;
  out.document = p.document;
  out.parallel.jobs = std::max<std::size_t>(1, o.jobs);
  const auto slots = shard_runs(p.cells.size(), out.repeat, o.shard);
  out.runs_planned = slots.size();
  std::map<std::size_t, std::size_t> planned; // cell -> its runs in this shard
  for (const auto& s : slots)
    ++planned[s.cell];
  auto start = clock::now();
  std::map<std::size_t, std::vector<run_done>> pending; // cell -> its finished runs
  std::size_t runs_done = 0, running = 0;
  double run_ms_sum = 0;

  auto report = [&](const run_slot* now) {
    if (!o.on_progress) return;
    progress pr;
    pr.cells_done = out.cells.size();
    pr.cells_total = p.cells.size();
    pr.runs_done = runs_done;
    pr.runs_total = slots.size();
    pr.running = running;
    pr.repeats = out.repeat;
    pr.repeat = now ? now->repeat : 0;
    pr.current = now ? &p.cells[now->cell] : nullptr;
    pr.elapsed_ms = ms_since(start);
    if (runs_done > 0)
      pr.eta_ms = run_ms_sum / static_cast<double>(runs_done) *
                  static_cast<double>(slots.size() - runs_done) /
                  static_cast<double>(out.parallel.jobs);
    o.on_progress(pr);
  };

  // A cell is reported once all of its runs in this shard are in, its runs in repeat order.
  auto finished = [&](run_done&& d) {
    ++runs_done;
    run_ms_sum += d.info.wall_ms;
    if (out.kernel.empty()) out.kernel = d.result.kernel;
    if (out.metrics.empty()) out.metrics = default_metrics(d.result);
    auto& list = pending[d.slot.cell];
    list.push_back(std::move(d));
    if (list.size() < planned[list.back().slot.cell]) return;
    std::sort(list.begin(), list.end(),
              [](const run_done& a, const run_done& b) { return a.slot.repeat < b.slot.repeat; });
    cell_result cr;
    cr.settings = p.cells[list.front().slot.cell];
    for (auto& r : list) {
      r.info.repeat = r.slot.repeat;
      r.info.start_lag_ms = start_lag(r.result);
      cr.seeds.push_back(r.result.seed);
      for (const auto& e : r.result.expectations)
        cr.expectations_held += e.passed;
      cr.expectations_total += r.result.expectations.size();
      cr.duration_ms += r.info.wall_ms;
      cr.info.push_back(r.info);
      cr.runs.push_back(std::move(r.result));
    }
    pending.erase(cr.settings.index);
    summarise_cell(cr, out.metrics);
    out.cells.push_back(std::move(cr));
  };

  auto options_for = [&](const run_slot& s) {
    runner::run_options ro;
    ro.seed = repeat_seed(o.seed, s.repeat);
    ro.stop_requested = o.stop_requested;
    ro.log = o.log;
    return ro;
  };
  auto cell_error = [&](const run_slot& s, const std::string& what) {
    const cell& c = p.cells[s.cell];
    out.error = "cell " + std::to_string(c.index + 1) + " (" + c.label() + "): " + what;
  };

  if (out.parallel.jobs == 1) {
    for (const auto& s : slots) {
      if (stop_asked(o)) {
        out.interrupted = true;
        break;
      }
      report(&s);
      auto run_start = clock::now();
      double cpu_start = cpu_now_ms();
      run_done d{s, {}, {}};
      try {
        d.result = runner::run_scenario(p.cells[s.cell].scenario, options_for(s));
      } catch (const std::exception& e) {
        cell_error(s, e.what());
        break;
      }
      if (d.result.interrupted) {
        out.interrupted = true;
        break;
      }
      d.info.wall_ms = ms_since(run_start);
      d.info.cpu_ms = cpu_now_ms() - cpu_start;
      trim(d.result);
      finished(std::move(d));
    }
  } else {
    std::vector<child_run> children;
    std::size_t next = 0;
    bool stopping = false;
    auto stop_all = [&] {
      if (stopping) return;
      stopping = true;
      for (auto& c : children)
        ::kill(c.pid, SIGTERM);
    };
    while (next < slots.size() || !children.empty()) {
      if (stop_asked(o)) {
        out.interrupted = true;
        stop_all();
      }
      while (!stopping && next < slots.size() && children.size() < out.parallel.jobs) {
        const run_slot& s = slots[next++];
        pipe_ends result_pipe = make_pipe();
        if (!result_pipe.read) {
          cell_error(s, std::string("pipe: ") + std::strerror(errno));
          stop_all();
          break;
        }
        auto ro = options_for(s);
        std::cout.flush();
        std::cerr.flush();
        pid_t pid = ::fork();
        if (pid == 0) {
          for (auto& c : children)
            c.fd.reset();
          result_pipe.read.reset();
          child_main(result_pipe.write.get(), p.cells[s.cell], ro);
        }
        result_pipe.write.reset();
        if (pid < 0) {
          cell_error(s, std::string("fork: ") + std::strerror(errno));
          stop_all();
          break;
        }
        children.push_back({s, pid, std::move(result_pipe.read), {}, clock::now()});
        ++running;
        report(&s);
      }
      if (children.empty()) break;
      std::vector<pollfd> polls;
      for (auto& c : children)
        polls.push_back({c.fd.get(), POLLIN, 0});
      int ready = ::poll(polls.data(), polls.size(), 100);
      if (ready <= 0) continue;
      for (std::size_t k = children.size(); k-- > 0;) {
        if (!(polls[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        auto& c = children[k];
        char buf[65536];
        ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n > 0) {
          c.data.append(buf, static_cast<std::size_t>(n));
          continue;
        }
        // End of its output: the child is done.
        c.fd.reset();
        int status = 0;
        rusage usage{};
        while (::wait4(c.pid, &status, 0, &usage) < 0 && errno == EINTR) {
        }
        child_run done = std::move(c);
        children.erase(children.begin() + static_cast<std::ptrdiff_t>(k));
        --running;
        nlohmann::json j = nlohmann::json::parse(done.data, nullptr, false);
        if (j.is_discarded() || !(j.contains("run") || j.contains("error"))) {
          if (!out.interrupted)
            cell_error(done.slot,
                       "its run process ended without a result (" +
                           (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                                : "exit " + std::to_string(WEXITSTATUS(status))) +
                           ")");
          stop_all();
          continue;
        }
        if (j.contains("error")) {
          cell_error(done.slot, j["error"].get<std::string>());
          stop_all();
          continue;
        }
        run_done d{done.slot, {}, {}};
        d.result = run_from_json(j["run"], p.cells[done.slot.cell].scenario, d.info);
        if (d.result.interrupted) {
          out.interrupted = true;
          stop_all();
          continue;
        }
        d.info.wall_ms = ms_since(done.started);
        d.info.cpu_ms = cpu_ms_of(usage);
        if (!stopping) finished(std::move(d));
      }
    }
  }
  std::sort(out.cells.begin(), out.cells.end(), [](const cell_result& a, const cell_result& b) {
    return a.settings.index < b.settings.index;
  });
  out.elapsed_ms = ms_since(start);
  assess_interference(out);
  report(nullptr);
  return out;
}

} // namespace backlog_lab::sweep
