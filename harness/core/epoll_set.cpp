#include "harness/core/epoll_set.hpp"

#include <cerrno>
#include <cstring>
#include <string>

#include "harness/core/error.hpp"

namespace backlog_lab {

std::shared_ptr<epoll_set> epoll_set::create(net::io_context& io) {
  unique_fd fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!fd) throw lab_error(std::string("epoll_create1: ") + std::strerror(errno));
  return std::shared_ptr<epoll_set>(new epoll_set(io, std::move(fd)));
}

epoll_set::epoll_set(net::io_context& io, unique_fd epoll_fd)
    : io_(io), epoll_fd_(epoll_fd.get()), readiness_(io, epoll_fd.release()) {}

epoll_set::token epoll_set::add(int fd, std::uint32_t events, fd_watcher* watcher) {
  std::uint32_t index;
  if (free_slots_.empty()) {
    index = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    index = free_slots_.back();
    free_slots_.pop_back();
  }
  slot& sl = slots_[index];
  sl.watcher = watcher;
  token t = (static_cast<token>(sl.generation) << 32) | index;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = t;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0) {
    ++live_;
    // Outside a batch (the end of a batch arms or re-polls by itself).
    if (started_ && !batch_posted_ && !in_batch_) arm();
    return t;
  }
  int err = errno;
  sl.watcher = nullptr; // never counted in live_: forget() only gives the slot back
  forget(t);
  errno = err;
  return 0;
}

bool epoll_set::modify(int fd, std::uint32_t events, token t) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = t;
  return ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void epoll_set::forget(token t) {
  if (t == 0) return;
  auto index = static_cast<std::uint32_t>(t);
  slot& sl = slots_[index];
  if (sl.generation != static_cast<std::uint32_t>(t >> 32)) return;
  if (sl.watcher) --live_;
  sl.watcher = nullptr;
  if (++sl.generation == 0) sl.generation = 1; // a token is never 0
  free_slots_.push_back(index);
  if (live_ == 0 && armed_) {
    // Nothing left to watch: do not keep the io_context running for it.
    boost::system::error_code ignored;
    readiness_.cancel(ignored);
  }
}

void epoll_set::start() {
  if (stopped_ || started_) return;
  started_ = true;
  // Events may already wait (descriptors added before start): look once before sleeping.
  if (live_ > 0) post_batch();
}

void epoll_set::post_batch() {
  batch_posted_ = true;
  net::post(io_, [self = shared_from_this()] { self->run_batch(); });
}

void epoll_set::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  readiness_.cancel(ignored);
}

void epoll_set::arm() {
  if (armed_ || stopped_ || live_ == 0) return;
  armed_ = true;
  readiness_.async_wait(net::posix::stream_descriptor::wait_read,
                        [self = shared_from_this()](boost::system::error_code ec) {
                          self->armed_ = false;
                          if (!ec)
                            self->run_batch();
                          else
                            self->arm(); // cancelled when the set emptied; maybe refilled since
                        });
}

void epoll_set::run_batch() {
  batch_posted_ = false;
  if (stopped_) return;
  int n = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), 0);
  in_batch_ = true;
  for (int i = 0; i < n && !stopped_; ++i) {
    const epoll_event& ev = events_[static_cast<std::size_t>(i)];
    const slot& sl = slots_[static_cast<std::uint32_t>(ev.data.u64)];
    // An earlier batch event may have forgotten it, or a forked child kept its file open.
    if (sl.watcher && sl.generation == static_cast<std::uint32_t>(ev.data.u64 >> 32))
      sl.watcher->on_events(ev.events);
  }
  in_batch_ = false;
  if (batch_end_) batch_end_();
  if (stopped_) return;
  if (n > 0 && live_ > 0)
    // Busy: poll again after the io_context's other handlers instead of paying for re-arming.
    post_batch();
  else
    arm();
}

} // namespace backlog_lab
