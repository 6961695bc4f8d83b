#include "proxy_sim/userspace/copy_session.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace backlog_lab::proxy_sim {

namespace {

/// Edge-triggered: every arrival of data or a FIN is one event, and no re-arming is needed.
constexpr std::uint32_t read_interest = EPOLLIN | EPOLLRDHUP | EPOLLET;
/// The peer closed or failed: a read now returns the end (0) or the error at once.
constexpr std::uint32_t peer_done = EPOLLRDHUP | EPOLLHUP | EPOLLERR;

} // namespace

copy_session::copy_session(copy_sessions& owner, unique_fd client, unique_fd backend)
    : owner_(owner) {
  client_.session = this;
  client_.is_client = true;
  backend_.session = this;
  to_backend_.from = &client_;
  to_backend_.to = &backend_;
  to_backend_.copied = &owner.stats_.bytes_to_backend;
  to_client_.from = &backend_;
  to_client_.to = &client_;
  to_client_.copied = &owner.stats_.bytes_to_client;
  reuse(std::move(client), std::move(backend));
}

void copy_session::reuse(unique_fd client, unique_fd backend) {
  client_.fd = std::move(client);
  client_.mask = read_interest;
  backend_.fd = std::move(backend);
  backend_.mask = read_interest;
  for (direction* d : {&to_backend_, &to_client_}) {
    d->open = true;
    d->blocked = false;
    d->offset = d->length = 0;
  }
  directions_open_ = 2;
  registered_ = false;
  closed_ = false;
}

void copy_session::start() {
  // The request usually arrived with (or right after) the handshake: copy it before watching,
  // so that registering does not report data that is already gone.
  pump(to_backend_, false);
  if (closed_) return;
  client_.registration = owner_.events_->add(client_.fd.get(), client_.mask, &client_);
  backend_.registration = owner_.events_->add(backend_.fd.get(), backend_.mask, &backend_);
  if (!client_.registration || !backend_.registration) {
    close();
    return;
  }
  registered_ = true;
}

void copy_session::side::on_events(std::uint32_t events) {
  session->on_events(*this, events);
}

void copy_session::on_events(side& s, std::uint32_t events) {
  if (closed_) return;
  direction& writes_here = s.is_client ? to_client_ : to_backend_;
  direction& reads_here = s.is_client ? to_backend_ : to_client_;
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && writes_here.open && writes_here.blocked) {
    // Room again: finish the write, then read what arrived while this direction waited (its
    // edges were passed over, so read until the socket says EAGAIN).
    if (flush(writes_here)) pump(writes_here, true);
    if (closed_) return;
  }
  if ((events & (EPOLLIN | peer_done)) && reads_here.open && !reads_here.blocked)
    pump(reads_here, (events & peer_done) != 0);
}

void copy_session::pump(direction& d, bool drain) {
  for (;;) {
    ssize_t n = ::recv(d.from->fd.get(), d.buffer.data(), d.buffer.size(), MSG_DONTWAIT);
    if (n > 0) {
      d.offset = 0;
      d.length = static_cast<std::size_t>(n);
      if (!flush(d)) return;
      // A short read emptied the socket: the next arrival is a new edge, unless the peer's FIN
      // is already there (then read the end now rather than on an event that will not come).
      if (static_cast<std::size_t>(n) < d.buffer.size() && !drain) return;
      continue;
    }
    if (n == 0) {
      end(d); // io.Copy returned: the peer closed its side
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) end(d); // reset, ...: io.Copy's error
    return;
  }
}

bool copy_session::flush(direction& d) {
  while (d.offset < d.length) {
    ssize_t n = ::send(d.to->fd.get(), d.buffer.data() + d.offset, d.length - d.offset,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      d.offset += static_cast<std::size_t>(n);
      *d.copied += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      d.blocked = true; // io.Copy blocks in Write: stop reading this direction's source
      want_writable(*d.to);
      return false;
    }
    end(d);
    return false;
  }
  d.blocked = false;
  return true;
}

void copy_session::want_writable(side& s) {
  if (s.mask & EPOLLOUT) return;
  s.mask |= EPOLLOUT;
  // MOD re-checks the socket, so room that appeared meanwhile is reported too.
  if (registered_ && !owner_.events_->modify(s.fd.get(), s.mask, s.registration)) close();
}

void copy_session::end(direction& d) {
  if (!owner_.half_close_) {
    close_pair(*d.to, *d.from); // dest.Close(); src.Close(): also ends the other direction
    return;
  }
  // dest.CloseWrite(); src.CloseRead(); both closed once both directions ended.
  ::shutdown(d.to->fd.get(), SHUT_WR);
  ::shutdown(d.from->fd.get(), SHUT_RD);
  d.open = false;
  if (--directions_open_ == 0) close_pair(*d.to, *d.from);
}

void copy_session::close() {
  close_pair(client_, backend_);
}

void copy_session::close_pair(side& first, side& second) {
  if (closed_) return;
  closed_ = true;
  // Closing removes the descriptors from the epoll set unless a forked child holds a copy for
  // a moment; forget() makes sure no late event reaches this session (which may be reused).
  for (side* s : {&first, &second}) {
    owner_.events_->forget(s->registration);
    s->registration = 0;
    s->fd.reset();
  }
  owner_.closed(*this);
}

copy_sessions::copy_sessions(std::shared_ptr<epoll_set> events, proxier_stats& stats,
                             bool half_close)
    : events_(std::move(events)), stats_(stats), half_close_(half_close) {}

copy_sessions::~copy_sessions() {
  close_all();
}

void copy_sessions::add(unique_fd client, unique_fd backend) {
  if (spare_.empty()) {
    open_.emplace_back(*this, std::move(client), std::move(backend));
  } else {
    open_.splice(open_.end(), spare_, spare_.begin());
    open_.back().reuse(std::move(client), std::move(backend));
  }
  auto& s = open_.back();
  s.self_ = std::prev(open_.end());
  ++started_;
  s.start();
}

void copy_sessions::close_all() {
  while (!open_.empty())
    open_.front().close();
}

void copy_sessions::release_closed() {
  constexpr std::size_t spare_kept = 64;
  while (!closed_.empty() && spare_.size() < spare_kept)
    spare_.splice(spare_.end(), closed_, closed_.begin());
  closed_.clear();
}

void copy_sessions::closed(copy_session& s) {
  // Kept until the batch ends: a later event of the same batch may still name it.
  closed_.splice(closed_.end(), open_, s.self_);
}

} // namespace backlog_lab::proxy_sim
