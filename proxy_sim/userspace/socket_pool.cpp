#include "proxy_sim/userspace/socket_pool.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace backlog_lab::proxy_sim {

socket_pool::socket_pool(const lab::netns& ns, std::size_t batch)
    : ns_(ns.duplicate()), batch_(batch == 0 ? 1 : batch) {}

socket_pool::~socket_pool() {
  clear();
}

int socket_pool::take(int family) {
  auto& spare = family == AF_INET6 ? v6_ : v4_;
  if (spare.empty()) {
    int err = 0;
    lab::netns_scope in(ns_);
    for (std::size_t i = 0; i < batch_; ++i) {
      int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        err = errno;
        break;
      }
      spare.push_back(fd);
    }
    if (spare.empty()) return -err;
  }
  int fd = spare.back();
  spare.pop_back();
  return fd;
}

void socket_pool::clear() {
  for (int fd : v4_)
    ::close(fd);
  for (int fd : v6_)
    ::close(fd);
  v4_.clear();
  v6_.clear();
}

} // namespace backlog_lab::proxy_sim
