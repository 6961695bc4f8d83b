#include "proxy_sim/userspace/socket_pool.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cerrno>

namespace backlog_lab::proxy_sim {

socket_pool::socket_pool(const lab::netns& ns, std::size_t batch)
    : ns_(ns.duplicate()), batch_(batch == 0 ? 1 : batch) {}

unique_fd socket_pool::take(int family) {
  auto& spare = family == AF_INET6 ? v6_ : v4_;
  if (spare.empty()) {
    int err = 0;
    {
      lab::netns_scope in(ns_);
      for (std::size_t i = 0; i < batch_; ++i) {
        unique_fd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) {
          err = errno;
          break;
        }
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        spare.push_back(std::move(fd));
      }
    }
    if (spare.empty()) {
      errno = err;
      return unique_fd();
    }
  }
  unique_fd fd = std::move(spare.back());
  spare.pop_back();
  return fd;
}

void socket_pool::clear() {
  v4_.clear();
  v6_.clear();
}

} // namespace backlog_lab::proxy_sim
