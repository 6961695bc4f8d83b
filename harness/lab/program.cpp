#include "harness/lab/program.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "harness/core/error.hpp"
#include "harness/core/processes.hpp"

extern char** environ;

namespace backlog_lab::lab {
namespace {

using clock = std::chrono::steady_clock;

int status_to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool executable_exists(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

unique_fd open_log(const program_spec& spec, const char* suffix) {
  int fd = -1;
  if (spec.log_dir.empty()) {
    fd = ::memfd_create((spec.name + suffix).c_str(), MFD_CLOEXEC);
  } else {
    std::string path = spec.log_dir + "/" + spec.name + suffix;
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw lab_error(errno_message("cannot open log file " + path, errno));
  }
  if (fd < 0) throw lab_error(errno_message("memfd_create for " + spec.name, errno));
  return unique_fd(fd);
}

// The keeper's loop: reap, and kill the whole tree when asked, when backlog-lab dies, or when
// the main process has exited. Never returns. SIGUSR1 is program::kill(); any other stop signal
// means backlog-lab is gone, and then `cleanup_dir` (if any) goes too.
[[noreturn]] void keeper_loop(pid_t main_pid, const char* cleanup_dir) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1})
    sigaddset(&set, s);
  int main_code = 137;
  bool main_done = false;
  bool owner_gone = false;
  for (;;) {
    siginfo_t info{};
    int sig = ::sigwaitinfo(&set, &info);
    if (sig == SIGCHLD) {
      int status = 0;
      pid_t w;
      while ((w = ::waitpid(-1, &status, WNOHANG)) > 0)
        if (w == main_pid) {
          main_done = true;
          main_code = status_to_code(status);
        }
      if (!main_done) continue;
    } else if (sig < 0) {
      continue;
    } else {
      owner_gone = sig != SIGUSR1;
    }
    // Asked to stop, or the main process ended: nothing of the tree may stay.
    for (;;) {
      for (pid_t p : descendants_of(::getpid()))
        ::kill(p, SIGKILL);
      int status = 0;
      pid_t w = ::waitpid(-1, &status, 0);
      if (w < 0 && errno == ECHILD) break;
      if (w == main_pid && !main_done) main_code = status_to_code(status);
    }
    if (owner_gone && cleanup_dir && *cleanup_dir)
      ::execl("/bin/rm", "rm", "-rf", "--", cleanup_dir, static_cast<char*>(nullptr));
    ::_exit(main_code);
  }
}

} // namespace

std::vector<pid_t> descendants_of(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  for (pid_t p : list_pids()) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", p);
    unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) continue;
    char buf[512];
    ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    buf[n] = 0;
    // "PID (comm) S PPID ...": comm may hold spaces and parentheses; the last ')' ends it.
    const char* close_paren = std::strrchr(buf, ')');
    if (!close_paren) continue;
    char state = 0;
    int parent = 0;
    if (std::sscanf(close_paren + 1, " %c %d", &state, &parent) == 2)
      children.emplace(static_cast<pid_t>(parent), p);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> frontier{root};
  while (!frontier.empty()) {
    pid_t p = frontier.back();
    frontier.pop_back();
    auto [lo, hi] = children.equal_range(p);
    for (auto it = lo; it != hi; ++it) {
      out.push_back(it->second);
      frontier.push_back(it->second);
    }
  }
  return out;
}

program program::start(const netns* ns, const program_spec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty())
    throw lab_error("program '" + spec.name + "': empty argv");
  program p;
  p.spec_ = spec;
  if (!executable_exists(spec.argv[0]))
    throw lab_error("cannot run '" + p.command_line() + "': '" + spec.argv[0] +
                    "' is not an executable on PATH (install it, or give its full path)");
  p.out_ = open_log(spec, ".stdout");
  p.err_ = open_log(spec, ".stderr");

  // Everything exec needs is built before fork: the keeper may be forked from a process with
  // other threads, where only async-signal-safe calls are sure to work in the child.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos && spec.env.count(kv.substr(0, eq))) continue;
    env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : spec.env)
    env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = spec.argv;
  for (auto& a : argv_copy)
    args.push_back(a.data());
  args.push_back(nullptr);

  // exec_pipe carries execvpe's errno from the program's process (EOF: exec succeeded); pid_pipe
  // the program's pid from the keeper.
  pipe_ends exec_pipe = make_pipe();
  if (!exec_pipe.read) throw lab_error(errno_message("pipe for " + spec.name, errno));
  pipe_ends pid_pipe = make_pipe();
  if (!pid_pipe.read) throw lab_error(errno_message("pipe for " + spec.name, errno));
  unique_fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_fd) throw lab_error(errno_message("opening /dev/null for " + spec.name, errno));
  pid_t parent = ::getpid();
  sigset_t all, old;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, &old);
  pid_t keeper = ::fork();
  if (keeper < 0) {
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    throw lab_error(errno_message("fork for " + spec.name, errno));
  }
  if (keeper == 0) {
    // The keeper: every signal stays blocked (it waits for them with sigwaitinfo).
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(137);
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    ::prctl(PR_SET_NAME, "bl-keeper");
    if (ns && ::setns(ns->fd(), CLONE_NEWNET) != 0) ::_exit(126);
    pid_t child = ::fork();
    if (child == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::setpgid(0, 0);
      // Dispositions set to "ignore" survive exec (a parent of backlog-lab may ignore SIGPIPE);
      // reset them so the program starts as it would from a shell.
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      for (int s = 1; s < NSIG; ++s)
        ::sigaction(s, &dfl, nullptr);
      ::sigprocmask(SIG_SETMASK, &old, nullptr);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::dup2(null_fd.get(), 0);
      ::dup2(p.out_.get(), 1);
      ::dup2(p.err_.get(), 2);
      // Only the exec-error pipe (close-on-exec) stays open besides 0..2.
      int keep = exec_pipe.write.get();
      if (keep > 3) ::close_range(3, static_cast<unsigned>(keep - 1), 0);
      ::close_range(static_cast<unsigned>(keep + 1), ~0U, 0);
      ::execvpe(args[0], args.data(), envp.data());
      int err = errno;
      ssize_t ignored = ::write(keep, &err, sizeof err);
      (void)ignored;
      ::_exit(127);
    }
    int code = child < 0 ? -1 : child;
    ssize_t ignored = ::write(pid_pipe.write.get(), &code, sizeof code);
    (void)ignored;
    ::close_range(0, ~0U, 0);
    if (child < 0) ::_exit(125);
    keeper_loop(child, spec.cleanup_dir.c_str());
  }
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  exec_pipe.write.reset();
  pid_pipe.write.reset();
  null_fd.reset();
  p.keeper_ = keeper;
  p.running_ = true;
  pid_t main_pid = -1;
  ssize_t n = ::read(pid_pipe.read.get(), &main_pid, sizeof main_pid);
  pid_pipe.read.reset();
  int exec_errno = 0;
  ssize_t m = ::read(exec_pipe.read.get(), &exec_errno, sizeof exec_errno);
  exec_pipe.read.reset();
  if (n != sizeof main_pid || main_pid <= 0) {
    p.kill();
    throw lab_error("cannot start '" + p.command_line() + "' in namespace '" +
                    (ns ? ns->name() : std::string("host")) + "' (fork or setns failed)");
  }
  p.main_pid_ = main_pid;
  if (m == sizeof exec_errno) {
    p.kill();
    throw lab_error(errno_message("cannot execute '" + p.command_line() + "'", exec_errno));
  }
  return p;
}

program::program(program&& other) noexcept
    : keeper_(other.keeper_), main_pid_(other.main_pid_), running_(other.running_),
      frozen_(other.frozen_), exit_code_(other.exit_code_), spec_(std::move(other.spec_)),
      out_(std::move(other.out_)), err_(std::move(other.err_)) {
  other.keeper_ = -1;
  other.running_ = false;
}

program& program::operator=(program&& other) noexcept {
  if (this != &other) {
    kill();
    keeper_ = other.keeper_;
    main_pid_ = other.main_pid_;
    running_ = other.running_;
    frozen_ = other.frozen_;
    exit_code_ = other.exit_code_;
    spec_ = std::move(other.spec_);
    out_ = std::move(other.out_);
    err_ = std::move(other.err_);
    other.keeper_ = -1;
    other.running_ = false;
  }
  return *this;
}

program::~program() {
  kill();
}

bool program::running() {
  if (!running_) return false;
  int status = 0;
  pid_t w = ::waitpid(keeper_, &status, WNOHANG);
  if (w == keeper_) {
    running_ = false;
    frozen_ = false;
    exit_code_ = status_to_code(status);
  }
  return running_;
}

std::optional<int> program::exit_code() {
  running();
  return exit_code_;
}

std::vector<pid_t> program::processes() const {
  if (!running_) return {};
  auto all = descendants_of(keeper_);
  // descendants_of lists the keeper's children first; the main process is one of them.
  std::vector<pid_t> out;
  for (pid_t p : all)
    if (p == main_pid_) out.push_back(p);
  for (pid_t p : all)
    if (p != main_pid_) out.push_back(p);
  return out;
}

void program::freeze() {
  if (!running_) return;
  // A process forked while the first pass ran is caught by the next; two quiet passes end it.
  std::set<pid_t> stopped;
  for (int quiet = 0; quiet < 2;) {
    bool any = false;
    for (pid_t p : descendants_of(keeper_))
      if (stopped.insert(p).second) {
        ::kill(p, SIGSTOP);
        any = true;
      }
    quiet = any ? 0 : quiet + 1;
  }
  frozen_ = true;
}

void program::resume() {
  if (!running_) return;
  for (pid_t p : descendants_of(keeper_))
    ::kill(p, SIGCONT);
  frozen_ = false;
}

void program::signal(int sig) const {
  if (running_ && main_pid_ > 0) ::kill(main_pid_, sig);
}

void program::kill() {
  if (keeper_ <= 0) return;
  if (running_) {
    ::kill(keeper_, SIGUSR1);
    int status = 0;
    while (::waitpid(keeper_, &status, 0) < 0 && errno == EINTR) {
    }
    if (!exit_code_) exit_code_ = 137;
  }
  running_ = false;
  frozen_ = false;
}

std::string program::last_lines(bool stderr_stream, size_t n) const {
  int fd = stderr_stream ? err_.get() : out_.get();
  if (fd < 0) return {};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size == 0) return {};
  const off_t window = 16384;
  off_t from = st.st_size > window ? st.st_size - window : 0;
  std::string text(static_cast<size_t>(st.st_size - from), '\0');
  ssize_t got = ::pread(fd, text.data(), text.size(), from);
  if (got <= 0) return {};
  text.resize(static_cast<size_t>(got));
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  size_t pos = text.size();
  for (size_t lines = 0; lines < n && pos != std::string::npos && pos > 0; ++lines)
    pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

std::string program::command_line() const {
  std::string out;
  for (const auto& a : spec_.argv)
    out += (out.empty() ? "" : " ") + a;
  return out;
}

readiness wait_until_accepting(program& p, const netns& ns, const std::string& address,
                               uint16_t port, std::chrono::milliseconds timeout) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1)
    throw lab_error("readiness: not an IPv4 address: " + address);
  auto deadline = clock::now() + timeout;
  for (;;) {
    if (!p.running()) return readiness::exited;
    int fd = -1;
    {
      netns_scope in(ns);
      fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) throw lab_error(errno_message("readiness socket", errno));
    unique_fd sock(fd);
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      if (::poll(&pfd, 1, 200) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        ok = err == 0;
      }
    }
    if (ok) return readiness::ready;
    if (clock::now() >= deadline) return readiness::timed_out;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

} // namespace backlog_lab::lab
