#pragma once
// kube-proxy's copyBytes, one pair of goroutines per proxied connection, as a state machine on
// raw non-blocking sockets driven by the proxier's epoll_set.
#include <array>
#include <cstddef>
#include <cstdint>
#include <list>

#include "harness/core/epoll_set.hpp"
#include "harness/core/unique_fd.hpp"
#include "proxy_sim/proxier.hpp"

namespace backlog_lab::proxy_sim {

class copy_sessions;

/// One proxied connection: the accepted client socket, the dialed backend socket, and one
/// io.Copy per direction with a buffer of its own (reused for the session's whole life).
class copy_session {
public:
  /// Takes both sockets (connected, non-blocking); nothing happens before start().
  copy_session(copy_sessions& owner, unique_fd client, unique_fd backend);
  /// Makes a closed session new again for another pair of sockets.
  void reuse(unique_fd client, unique_fd backend);
  copy_session(const copy_session&) = delete;
  copy_session& operator=(const copy_session&) = delete;

  /// Copies what the client already sent (usually the whole request), then watches both sockets.
  void start();
  /// Closes both sockets (client first) unless already closed.
  void close();
  /// Whether both sockets are closed.
  bool closed() const { return closed_; }

private:
  /// Size of each direction's buffer (Go's io.Copy uses 32 KiB).
  static constexpr std::size_t buffer_bytes = std::size_t{16} * 1024;

  /// One socket of the pair as the epoll_set sees it.
  struct side final : fd_watcher {
    copy_session* session = nullptr;
    bool is_client = false;
    std::uint32_t mask = 0; ///< EPOLL* interest registered (or to register)
    unique_fd fd;
    epoll_set::token registration = 0;
    void on_events(std::uint32_t events) override;
  };

  /// io.Copy(to, from): what was read and not yet written sits in the buffer.
  struct direction {
    side* from = nullptr;
    side* to = nullptr;
    std::uint64_t* copied = nullptr;
    bool open = true;
    bool blocked = false; ///< waiting for `to` to take the rest of the buffer
    std::size_t offset = 0;
    std::size_t length = 0;
    std::array<char, buffer_bytes> buffer;
  };

  void on_events(side& s, std::uint32_t events);
  void pump(direction& d, bool drain);
  bool flush(direction& d);
  void end(direction& d);
  void close_pair(side& first, side& second);
  void want_writable(side& s);

  copy_sessions& owner_;
  side client_;
  side backend_;
  direction to_backend_;
  direction to_client_;
  int directions_open_ = 2;
  bool registered_ = false;
  bool closed_ = false;
  std::list<copy_session>::iterator self_; ///< where the owner keeps this session

  friend class copy_sessions;
};

/// The copy sessions of one proxier and what they share: the epoll_set, the byte counters and
/// the close behaviour.
class copy_sessions {
public:
  /// `half_close`: CloseWrite/CloseRead per direction (after kubernetes#18524) instead of
  /// closing both sockets when either direction ends.
  copy_sessions(std::shared_ptr<epoll_set> events, proxier_stats& stats, bool half_close);
  copy_sessions(const copy_sessions&) = delete;
  copy_sessions& operator=(const copy_sessions&) = delete;
  ~copy_sessions();

  /// Starts copying between a connected client and backend.
  void add(unique_fd client, unique_fd backend);
  /// Closes every open session.
  void close_all();
  /// Frees the sessions closed so far, keeping a few for reuse (safe only outside an epoll_set
  /// batch).
  void release_closed();

  /// Sessions started so far.
  std::uint64_t started() const { return started_; }
  /// Sessions not closed yet.
  std::uint64_t open() const { return open_.size(); }

private:
  void closed(copy_session& s);

  std::shared_ptr<epoll_set> events_;
  proxier_stats& stats_;
  bool half_close_;
  std::list<copy_session> open_;
  std::list<copy_session> closed_;
  /// Closed sessions kept for the next ones: a session is ~33 KiB, and allocating it afresh
  /// each time made the heap grow and shrink (brk, page faults) every few connections.
  std::list<copy_session> spare_;
  std::uint64_t started_ = 0;

  friend class copy_session;
};

} // namespace backlog_lab::proxy_sim
