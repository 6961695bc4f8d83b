#pragma once
// One client connection: its state, as client_group's state machine moves it along
// (idle -> connecting -> sending -> awaiting -> idle), the I/O steps that move it (plain
// syscalls on a non-blocking socket, after epoll readiness), and how a failure maps to an
// outcome class (docs/clients.md#outcome-classes). The group decides what happens next.
#include <cstdint>
#include <deque>
#include <span>

#include "harness/clients/deadline_list.hpp"
#include "harness/clients/http_message.hpp"
#include "harness/clients/results.hpp"
#include "harness/core/asio.hpp"
#include "harness/core/epoll_set.hpp"
#include "harness/core/unique_fd.hpp"

namespace backlog_lab::clients {

/// Where a connection is in its life.
enum class phase : std::uint8_t { idle, connecting, sending, awaiting };

struct connection_slot;

/// Where a slot's socket events go (the group that owns it).
class slot_events {
public:
  /// `events`: the EPOLL* mask reported for the slot's socket.
  virtual void on_socket_events(connection_slot& s, std::uint32_t events) = 0;

protected:
  ~slot_events() = default;
};

/// One connection's state; slots are reused, `generation` tells stale handlers apart.
struct connection_slot final : fd_watcher, deadline_entry {
  explicit connection_slot(slot_events& owner) : owner(&owner) {}
  void on_events(std::uint32_t events) override { owner->on_socket_events(*this, events); }

  slot_events* owner;
  unique_fd fd;                      ///< non-blocking from birth; plain syscalls do the I/O
  epoll_set::token registration = 0; ///< in the group's epoll_set (edge-triggered, once)
  bool connected_inline = false;     ///< connect() finished at once; a posted handler goes on
  bool readable = false;             ///< data or a FIN arrived before the response was awaited
  connection_slot* next_free = nullptr;
  std::int64_t intended_ns = 0;
  std::int64_t started_ns = 0;
  std::int64_t connected_ns = -1;
  std::uint32_t generation = 0;
  std::uint32_t request_size = 0;
  std::uint32_t sent = 0;
  std::uint32_t response_bytes = 0;
  std::uint16_t source_index = 0;
  std::uint16_t local_port = 0;
  phase state = phase::idle;
  http_response_parser parser;
};

/// A group's connection slots: stable addresses, reused through a free list; it never shrinks,
/// so a slot's address stays valid for handlers that check its `generation`.
class connection_slots {
public:
  /// `owner` receives every slot's socket events.
  explicit connection_slots(slot_events& owner) : owner_(&owner) {}
  connection_slots(const connection_slots&) = delete;
  connection_slots& operator=(const connection_slots&) = delete;

  /// A free slot (a new one if none is free), its generation advanced.
  connection_slot& acquire() {
    connection_slot* s = free_;
    if (s)
      free_ = s->next_free;
    else
      s = &slots_.emplace_back(*owner_);
    ++s->generation;
    return *s;
  }
  /// Returns `s` to the free list, idle.
  void release(connection_slot& s) noexcept {
    s.state = phase::idle;
    s.next_free = free_;
    free_ = &s;
  }
  /// Every slot ever made, idle or not (releasing one while iterating is allowed).
  std::deque<connection_slot>& all() noexcept { return slots_; }

private:
  slot_events* owner_;
  std::deque<connection_slot> slots_;
  connection_slot* free_ = nullptr;
};

/// What an I/O step of a connection came to.
enum class io_status : std::uint8_t {
  done,         ///< the request is sent in full, or the response is complete
  would_block,  ///< nothing more now: the next readiness event goes on
  closed_early, ///< the peer's FIN before a complete response
  failed,       ///< an error (`io_step::error`; EPROTO for a malformed HTTP response)
};

/// An I/O step's status and, if it failed, the errno.
struct io_step {
  io_status status = io_status::done;
  int error = 0;
};

/// Binds `fd` to `source` with the port left to connect() (IP_BIND_ADDRESS_NO_PORT), so a
/// bound source address does not use up ephemeral ports faster than an unbound socket would.
/// 0, or the errno.
int bind_source(int fd, const net::ip::address& source);

/// The local port of a connected socket, 0 if it cannot be read.
std::uint16_t local_port(int fd) noexcept;

/// Writes what is left of the slot's request (`s.sent` of `s.request_size` bytes so far) and
/// advances `s.sent`: done, would_block (EPOLLOUT comes when there is room) or failed.
/// `scratch` (request_source::scratch_bytes) holds a POST header while it is written.
io_step send_request(connection_slot& s, const request_source& request, std::span<char> scratch);

/// Reads what has arrived into `buffer` (shared: the read is synchronous) and counts it in
/// `s.response_bytes`. Any byte completes a raw response; an HTTP one (`http`) is done when
/// `s.parser` says so, and malformed fails with EPROTO. EOF is done if it ends an HTTP
/// response, else closed_early.
io_step read_response(connection_slot& s, std::span<char> buffer, bool http) noexcept;

/// A failed connect, by errno.
outcome classify_connect_error(int err) noexcept;
/// A failed send or receive on a connected socket, by errno.
outcome classify_io_error(int err) noexcept;

} // namespace backlog_lab::clients
