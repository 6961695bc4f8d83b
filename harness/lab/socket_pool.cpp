#include "harness/lab/socket_pool.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "harness/core/error.hpp"

namespace backlog_lab::lab {

socket_pool::socket_pool(const netns& ns, sizing s)
    : ns_(ns.duplicate()), sizing_(s), batch_(std::max<std::size_t>(s.batch, 1)) {}

unique_fd socket_pool::take(int family) {
  auto& spare = family == AF_INET6 ? v6_ : v4_;
  if (spare.empty()) {
    if (sizing_.adaptive) {
      auto now = std::chrono::steady_clock::now();
      batch_ = now - last_refill_ < std::chrono::milliseconds(10)
                   ? std::min(batch_ * 2, std::max<std::size_t>(sizing_.max_batch, 1))
                   : std::max<std::size_t>(batch_ / 2, 1);
      last_refill_ = now;
    }
    int err = refill(family, spare);
    if (spare.empty()) {
      errno = err;
      return unique_fd();
    }
  }
  unique_fd fd = std::move(spare.back());
  spare.pop_back();
  return fd;
}

// What netns_scope does, but failing with an errno rather than an exception: at the open-file
// limit, opening the way back is what fails first.
int socket_pool::refill(int family, std::vector<unique_fd>& spare) {
  unique_fd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home) return errno;
  if (::setns(ns_.fd(), CLONE_NEWNET) != 0) return errno;
  int err = 0;
  for (std::size_t i = 0; i < batch_; ++i) {
    unique_fd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      err = errno;
      break;
    }
    if (sizing_.no_delay) {
      int one = 1;
      ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    spare.push_back(std::move(fd));
  }
  if (::setns(home.get(), CLONE_NEWNET) != 0) // stuck in the lab namespace: nothing sane follows
    throw lab_error(errno_message("returning from namespace '" + ns_.name() + "'", errno));
  // Hand them out in creation order.
  std::reverse(spare.begin(), spare.end());
  return err;
}

void socket_pool::clear() {
  v4_.clear();
  v6_.clear();
}

} // namespace backlog_lab::lab
