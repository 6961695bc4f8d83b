#include "harness/doctor/take.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "harness/core/error.hpp"
#include "harness/core/unique_fd.hpp"

namespace backlog_lab::doctor {
namespace {

// Through syscall(2): Debian 12's <sys/pidfd.h> declares both without extern "C" (glibc 2.36),
// so C++ callers cannot link against them.
int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}
int pidfd_getfd(int pidfd, int fd) {
  return static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0));
}

std::string yama_scope() {
  std::ifstream in("/proc/sys/kernel/yama/ptrace_scope");
  std::string v;
  std::getline(in, v);
  return v;
}

// Why pidfd_getfd was refused, and what to do about it.
std::string refusal(const observer::socket_holder& owner, int err) {
  std::string who = owner.comm + " (pid " + std::to_string(owner.pid) + ")";
  if (err == ESRCH) return who + " has exited";
  if (err == EBADF) return who + " no longer has descriptor " + std::to_string(owner.fd);
  if (err == ENOSYS) return "this kernel has no pidfd_getfd (Linux 5.6 or newer is needed)";
  if (err != EPERM && err != EACCES) return errno_message("pidfd_getfd on " + who, err);
  std::string why = "not allowed to take descriptor " + std::to_string(owner.fd) + " of " + who +
                    ": pidfd_getfd needs ptrace access (PTRACE_MODE_ATTACH_REALCREDS)";
  if (::geteuid() != 0) why += "; run as root, or with CAP_SYS_PTRACE, or as the owner's user";
  std::string yama = yama_scope();
  if (yama == "1")
    why += "; Yama ptrace_scope is 1: without CAP_SYS_PTRACE only descendants may be taken from";
  else if (yama == "2")
    why += "; Yama ptrace_scope is 2: CAP_SYS_PTRACE is required";
  else if (yama == "3")
    why += "; Yama ptrace_scope is 3: nobody may (it can only be lowered by a reboot)";
  return why;
}

observer::endpoint peer_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  observer::endpoint e;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return e;
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    e.address.family = AF_INET;
    std::memcpy(e.address.bytes.data(), &a.sin_addr, 4);
    e.port = ntohs(a.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    e.address.family = AF_INET6;
    std::memcpy(e.address.bytes.data(), &a.sin6_addr, 16);
    e.port = ntohs(a.sin6_port);
  }
  return e;
}

} // namespace

std::vector<taken_connection> take_queued(const observer::socket_holder& owner,
                                          std::uint32_t listener_inode, std::size_t max,
                                          std::size_t keep) {
  unique_fd pidfd(pidfd_open(owner.pid));
  if (!pidfd.valid()) throw lab_error(refusal(owner, errno));
  unique_fd listener(pidfd_getfd(pidfd.get(), owner.fd)); // O_CLOEXEC by the kernel
  if (!listener.valid()) throw lab_error(refusal(owner, errno));
  struct stat st {};
  if (::fstat(listener.get(), &st) != 0 || st.st_ino != listener_inode)
    throw lab_error("descriptor " + std::to_string(owner.fd) + " of pid " +
                    std::to_string(owner.pid) + " is no longer the listener (inode " +
                    std::to_string(listener_inode) + ")");

  std::vector<taken_connection> taken;
  while (taken.size() < max) {
    // poll first: O_NONBLOCK on the duplicate would change the owner's listener too (it is the
    // same open file description), so accept() is only called when a child is queued.
    pollfd p{listener.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)) break;
    unique_fd child(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!child.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;
    }
    taken_connection c;
    c.peer = peer_of(child.get());
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(child.get(), buf, sizeof buf, 0);
      if (n > 0) {
        c.bytes += static_cast<std::size_t>(n);
        if (c.head.size() < keep)
          c.head.append(buf, std::min(static_cast<std::size_t>(n), keep - c.head.size()));
        continue;
      }
      if (n == 0) c.peer_closed = true;
      if (n < 0 && errno == EINTR) continue;
      break; // EOF, EAGAIN (nothing more without waiting) or an error such as ECONNRESET
    }
    taken.push_back(std::move(c));
  }
  return taken;
}

std::string show_bytes(std::string_view bytes, std::size_t limit) {
  static const char* const starts[] = {"GET ",   "POST ",    "PUT ",     "HEAD ",  "DELETE ",
                                       "PATCH ", "OPTIONS ", "CONNECT ", "TRACE ", "HTTP/1."};
  bool http = false;
  for (const char* s : starts)
    if (bytes.substr(0, std::strlen(s)) == s) http = true;
  std::string out;
  if (http) {
    auto end = bytes.find("\r\n\r\n");
    std::string_view head =
        bytes.substr(0, std::min(end == std::string_view::npos ? bytes.size() : end, limit));
    for (char ch : head) {
      if (ch == '\r') continue;
      out += (ch == '\n' || (ch >= 0x20 && ch < 0x7f)) ? ch : '.';
    }
    std::size_t shown = head.size() + (end != std::string_view::npos && end < limit ? 4 : 0);
    if (bytes.size() > shown) out += "\n(+" + std::to_string(bytes.size() - shown) + " more bytes)";
    return out;
  }
  char hex[4];
  for (std::size_t i = 0; i < bytes.size() && i < limit; ++i) {
    std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned char>(bytes[i]));
    out += hex;
  }
  if (bytes.size() > limit) out += " (+" + std::to_string(bytes.size() - limit) + " more bytes)";
  return out;
}

} // namespace backlog_lab::doctor
