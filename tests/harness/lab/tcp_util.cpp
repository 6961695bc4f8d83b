#include "tests/harness/lab/tcp_util.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "harness/core/error.hpp"

namespace backlog_lab::testing {
namespace {

sockaddr_in endpoint(const std::string& address, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1)
    throw lab_error("bad IPv4 address " + address);
  return sa;
}

bool wait_for(int fd, short events, std::chrono::milliseconds limit) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(limit.count())) == 1;
}

} // namespace

unique_fd tcp_listen(const lab::netns& ns, const std::string& address, uint16_t port, int backlog) {
  lab::netns_scope in(ns);
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa = endpoint(address, port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(fd.get(), backlog) != 0)
    throw lab_error(errno_message("listen on " + address + ":" + std::to_string(port), errno));
  return fd;
}

unique_fd tcp_connect_start(const lab::netns& ns, const std::string& source,
                            const std::string& address, uint16_t port) {
  lab::netns_scope in(ns);
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!source.empty()) {
    sockaddr_in src = endpoint(source, 0);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
      throw lab_error(errno_message("bind to " + source, errno));
  }
  sockaddr_in sa = endpoint(address, port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS)
    throw lab_error(errno_message("connect to " + address, errno));
  return fd;
}

int tcp_connect_finish(const unique_fd& fd, std::chrono::milliseconds limit) {
  if (!wait_for(fd.get(), POLLOUT, limit)) return -1;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

unique_fd tcp_accept(const unique_fd& listener, std::chrono::milliseconds limit) {
  if (!wait_for(listener.get(), POLLIN, limit)) return unique_fd();
  return unique_fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
}

std::string read_some(const unique_fd& fd, std::chrono::milliseconds limit) {
  if (!wait_for(fd.get(), POLLIN, limit)) return {};
  char buf[4096];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string peer_address(const unique_fd& fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) return {};
  char text[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &sa.sin_addr, text, sizeof text);
  return text;
}

} // namespace backlog_lab::testing
