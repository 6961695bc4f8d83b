#include "harness/lab/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "harness/core/error.hpp"

namespace backlog_lab::lab {
namespace {

using clock = std::chrono::steady_clock;

// In the child: die with the parent, and return if the parent is already gone.
void die_with_parent(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
}

// write(2) to a pipe whose reader may be gone: EPIPE instead of SIGPIPE, without changing the
// process's disposition (a library must not). SIGPIPE is blocked in this thread for the call and
// a pending one consumed (the pattern of signal(7)'s "thread-directed" signals).
ssize_t write_without_sigpipe(int fd, const char* data, size_t size) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  ssize_t n = ::write(fd, data, size);
  int error = errno;
  if (n < 0 && error == EPIPE) {
    timespec none{};
    while (::sigtimedwait(&pipe_only, nullptr, &none) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = error;
  return n;
}

int status_to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

} // namespace

bool have_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
  return false;
}

command_result run_command(const netns* ns, const std::vector<std::string>& argv,
                           const std::string& input, std::chrono::milliseconds timeout) {
  if (argv.empty()) throw lab_error("run_command: empty argv");
  int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  for (auto& p : pipes) {
    if (::pipe2(p, O_CLOEXEC) == 0) continue;
    int error = errno;
    for (auto& made : pipes)
      for (int fd : made)
        if (fd >= 0) ::close(fd);
    throw lab_error(errno_message("pipe for " + argv[0], error));
  }
  int(&in_pipe)[2] = pipes[0];
  int(&out_pipe)[2] = pipes[1];
  int(&err_pipe)[2] = pipes[2];
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw lab_error(errno_message("fork for " + argv[0], errno));
  if (pid == 0) {
    die_with_parent(parent);
    if (ns && ::setns(ns->fd(), CLONE_NEWNET) != 0) ::_exit(126);
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    // Sockets of the lab (listeners, client connections) must not live on in the tool.
    ::close_range(3, ~0U, 0);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  command_result result;
  size_t written = 0;
  int in_fd = in_pipe[1];
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  } else {
    ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  auto deadline = clock::now() + timeout;
  while (out_fd >= 0 || err_fd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
    int rc = ::poll(fds, 3, static_cast<int>(left.count()));
    if (rc < 0 && errno != EINTR) break;
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n > 0) {
          (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          ::close(fds[i].fd);
          (i == 0 ? out_fd : err_fd) = -1;
        }
      }
    }
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = write_without_sigpipe(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == input.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd})
    if (fd >= 0) ::close(fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_status = status_to_code(status);
  if (result.exit_status == 127 && result.out.empty() && result.err.empty())
    throw lab_error("cannot run '" + argv[0] + "': not found on PATH (install it)");
  if (result.exit_status == 126 && ns)
    throw lab_error("cannot run '" + argv[0] + "' in namespace '" + ns->name() + "': setns failed");
  return result;
}

child_process child_process::spawn(const netns* ns, const std::function<int()>& body) {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw lab_error(errno_message("fork", errno));
  if (pid == 0) {
    die_with_parent(parent);
    if (ns && ::setns(ns->fd(), CLONE_NEWNET) != 0) ::_exit(126);
    int code = 125;
    try {
      code = body();
    } catch (...) {
    }
    ::_exit(code);
  }
  return child_process(pid);
}

child_process::child_process(child_process&& other) noexcept : pid_(other.pid_) {
  other.pid_ = -1;
}

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    kill_and_wait();
    pid_ = other.pid_;
    other.pid_ = -1;
  }
  return *this;
}

child_process::~child_process() {
  kill_and_wait();
}

void child_process::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

int child_process::kill_and_wait() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return status;
}

int child_process::wait_for(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  auto deadline = clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status_to_code(status);
    }
    if (clock::now() >= deadline) return -1;
    ::usleep(2000);
  }
}

} // namespace backlog_lab::lab
