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
#include "harness/core/unique_fd.hpp"

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
  auto pipe_for_command = [&argv] {
    pipe_ends p = make_pipe();
    if (!p.read) throw lab_error(errno_message("pipe for " + argv[0], errno));
    return p;
  };
  pipe_ends in_pipe = pipe_for_command();
  pipe_ends out_pipe = pipe_for_command();
  pipe_ends err_pipe = pipe_for_command();
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
    ::dup2(in_pipe.read.get(), 0);
    ::dup2(out_pipe.write.get(), 1);
    ::dup2(err_pipe.write.get(), 2);
    // Sockets of the lab (listeners, client connections) must not live on in the tool.
    ::close_range(3, ~0U, 0);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  in_pipe.read.reset();
  out_pipe.write.reset();
  err_pipe.write.reset();

  command_result result;
  size_t written = 0;
  unique_fd& in_fd = in_pipe.write;
  if (input.empty())
    in_fd.reset();
  else
    ::fcntl(in_fd.get(), F_SETFL, O_NONBLOCK);
  unique_fd* outputs[2] = {&out_pipe.read, &err_pipe.read};
  auto deadline = clock::now() + timeout;
  while (outputs[0]->valid() || outputs[1]->valid()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    // poll(2) skips the negative descriptors of ends already closed.
    pollfd fds[3] = {
        {outputs[0]->get(), POLLIN, 0}, {outputs[1]->get(), POLLIN, 0}, {in_fd.get(), POLLOUT, 0}};
    int rc = ::poll(fds, 3, static_cast<int>(left.count()));
    if (rc < 0 && errno != EINTR) break;
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n > 0)
          (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
        else if (n == 0 || errno != EINTR)
          outputs[i]->reset();
      }
    }
    if (in_fd && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n =
          write_without_sigpipe(in_fd.get(), input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == input.size()) in_fd.reset();
    }
  }
  in_pipe = {};
  out_pipe = {};
  err_pipe = {};
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
