#include "bench/driver/measure.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "harness/core/error.hpp"

namespace backlog_lab::bench {
namespace {

using clock = std::chrono::steady_clock;

void pin_self(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

/// In a freshly forked child: die with the parent, enter the namespace, pin.
void become_child(pid_t parent, const lab::netns* ns, int cpu) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  if (ns && ::setns(ns->fd(), CLONE_NEWNET) != 0) ::_exit(126);
  pin_self(cpu);
}

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  return args;
}

int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

} // namespace

double figure::median() const {
  if (runs.empty()) return 0;
  auto v = runs;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double figure::min() const {
  return runs.empty() ? 0 : *std::min_element(runs.begin(), runs.end());
}
double figure::max() const {
  return runs.empty() ? 0 : *std::max_element(runs.begin(), runs.end());
}

exec_result exec_in(const lab::netns* ns, const std::vector<std::string>& argv, bool capture,
                    int cpu, std::chrono::milliseconds timeout) {
  if (argv.empty()) throw lab_error("exec_in: empty argv");
  int out[2] = {-1, -1};
  if (capture && ::pipe2(out, O_CLOEXEC) != 0)
    throw lab_error(errno_message("pipe for " + argv[0], errno));
  auto args = c_argv(argv);
  pid_t parent = ::getpid();
  auto start = clock::now();
  pid_t pid = ::fork();
  if (pid < 0) throw lab_error(errno_message("fork for " + argv[0], errno));
  if (pid == 0) {
    become_child(parent, ns, cpu);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(capture ? out[1] : null, 1);
    ::dup2(null, 2);
    ::close_range(3, ~0U, 0); // lab sockets must not live on in the tool
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  exec_result r;
  auto deadline = start + timeout;
  if (capture) {
    ::close(out[1]);
    char buf[65536];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      if (left.count() <= 0) {
        ::kill(pid, SIGKILL);
        r.timed_out = true;
        break;
      }
      pollfd pfd{out[0], POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
      ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n > 0)
        r.out.append(buf, static_cast<std::size_t>(n));
      else if (n == 0 || errno != EINTR)
        break;
    }
    ::close(out[0]);
  }
  // Wait on a pidfd: no polling loop competing with the timed process for the CPU.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0 && !r.timed_out) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    pollfd pfd{pidfd, POLLIN, 0};
    int rc;
    do {
      rc = ::poll(&pfd, 1, static_cast<int>(std::max<long>(left.count(), 0)));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
      ::kill(pid, SIGKILL);
      r.timed_out = true;
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  int status = 0;
  rusage usage{};
  while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  r.wall_ms = ms_since(start);
  r.cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
             (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
  r.exit_status = status_code(status);
  if (r.exit_status == 127 && r.out.empty())
    throw lab_error("cannot run '" + argv[0] + "': not found on PATH (install it)");
  return r;
}

peer_process peer_process::fork_body(const lab::netns& ns, int cpu,
                                     const std::function<int()>& body) {
  return peer_process(lab::child_process::spawn(&ns, [cpu, &body] {
    pin_self(cpu);
    return body();
  }));
}

peer_process peer_process::start(const lab::netns& ns, const std::vector<std::string>& argv,
                                 int cpu, const std::string& log_path) {
  auto args = c_argv(argv);
  return fork_body(ns, cpu, [&args, &log_path]() -> int {
    int null = ::open("/dev/null", O_RDWR);
    int log = log_path.empty()
                  ? null
                  : ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ::dup2(null, 0);
    ::dup2(log < 0 ? null : log, 1);
    ::dup2(log < 0 ? null : log, 2);
    ::close_range(3, ~0U, 0); // lab sockets must not live on in the peer
    ::execvp(args[0], args.data());
    return 127;
  });
}

bool peer_process::alive() const {
  if (pid() <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid()) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

double peer_process::cpu_ms() const {
  std::ifstream in("/proc/" + std::to_string(pid()) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after the last ')'.
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stod(f);
    if (i == 15) {
      stime = std::stod(f);
      break;
    }
  }
  return (utime + stime) * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

bool wait_listening(const lab::netns& ns, unsigned short port, std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  while (clock::now() < deadline) {
    int fd;
    {
      lab::netns_scope in(ns);
      fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }
    bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
    if (fd >= 0) ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

pin_scope::pin_scope(int cpu) {
  if (cpu < 0) return;
  cpu_set_t old;
  if (::sched_getaffinity(0, sizeof old, &old) != 0) return;
  saved_.assign(reinterpret_cast<unsigned char*>(&old),
                reinterpret_cast<unsigned char*>(&old) + sizeof old);
  restore_ = true;
  pin_self(cpu);
}

pin_scope::~pin_scope() {
  if (!restore_) return;
  cpu_set_t old;
  std::copy(saved_.begin(), saved_.end(), reinterpret_cast<unsigned char*>(&old));
  ::sched_setaffinity(0, sizeof old, &old);
}

double thread_cpu_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double children_cpu_ms() {
  rusage u{};
  ::getrusage(RUSAGE_CHILDREN, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

namespace {

/// The aggregate "cpu" line of /proc/stat: {busy, total} jiffies.
std::pair<double, double> cpu_jiffies() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const double busy = user + nice + system + irq + softirq + steal;
  return {busy, busy + idle + iowait};
}

} // namespace

double wait_for_quiet_cpus(std::chrono::milliseconds limit) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < limit) {
    auto [busy0, total0] = cpu_jiffies();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto [busy1, total1] = cpu_jiffies();
    if (total1 > total0 && (busy1 - busy0) / (total1 - total0) < 0.15) break;
  }
  return ms_since(start);
}

double self_status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1));
  return 0;
}

machine_info describe_machine() {
  machine_info m;
  m.nproc = std::thread::hardware_concurrency();
  utsname u{};
  if (::uname(&u) == 0) m.kernel = u.release;
  std::ifstream cpu("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpu, line))
    if (line.rfind("model name", 0) == 0) {
      m.cpu_model = line.substr(line.find(':') + 2);
      break;
    }
  std::ifstream mem("/proc/meminfo");
  while (std::getline(mem, line))
    if (line.rfind("MemTotal:", 0) == 0) {
      m.mem_gib = std::stod(line.substr(9)) / (1024.0 * 1024.0);
      break;
    }
  return m;
}

std::vector<double> load_averages() {
  double l[3] = {0, 0, 0};
  if (::getloadavg(l, 3) != 3) return {0, 0, 0};
  return {l[0], l[1], l[2]};
}

} // namespace backlog_lab::bench
