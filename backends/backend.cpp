#include "backends/backend.hpp"

#include <fcntl.h>

#include <algorithm>
#include <boost/intrusive/list.hpp>
#include <chrono>
#include <cstring>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "backends/grpc_preface.hpp"
#include "backends/http_request.hpp"
#include "harness/core/error.hpp"

namespace backlog_lab::backends {

namespace detail {

using error_code = boost::system::error_code;
namespace bi = boost::intrusive;
using auto_unlink_hook = bi::list_base_hook<bi::link_mode<bi::auto_unlink>>;

/// How long a closing http connection keeps reading (and discarding) after its last response
/// when the client still had bytes in flight, so that closing does not turn into a RST that
/// could destroy the response before the client reads it (nginx's lingering_timeout).
constexpr std::chrono::seconds linger_timeout{2};
constexpr size_t initial_buffer = 4096;
constexpr size_t pooled_buffers = 256;

/// One accepted connection. Owned by its coroutine (shared with a linger guard); linked into
/// the backend's list so that kill/freeze/reset_all can reach it, unlinked when destroyed.
struct connection : auto_unlink_hook {
  explicit connection(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
  tcp::socket socket;
  net::steady_timer timer; ///< http service time and linger deadline; cancelled by kill
};

struct backend_impl {
  backend_impl(net::io_context& io_ctx, const lab::netns& pod, scenario::backend_spec s,
               net::ip::address address)
      : io(io_ctx), ns(pod.duplicate()), spec(std::move(s)), kind(spec.kind),
        endpoint(address, spec.port), acceptor(io_ctx), resume_signal(io_ctx) {
    if (kind == backend_kind::exec)
      throw input_error("backend '" + spec.name + "'", "a built-in kind (an exec backend is a "
                                                       "program the runner starts)");
    resume_signal.expires_at(net::steady_timer::time_point::max());
    if (kind == backend_kind::http) build_responses();
  }

  net::io_context& io;
  lab::netns ns; ///< our own handle: restart() opens a new listener there
  scenario::backend_spec spec;
  backend_kind kind;
  tcp::endpoint endpoint;
  tcp::acceptor acceptor;
  bool alive = false;
  bool frozen = false;
  uint64_t process_generation = 0; ///< +1 per kill(): connections of a dead process are dropped
  uint64_t listen_generation = 0;  ///< +1 per listener close: its accept loop ends
  /// Never expires; cancel() wakes every coroutine waiting for resume() (or for kill()).
  net::steady_timer resume_signal;
  bi::list<connection, bi::constant_time_size<false>> connections;
  backend_stats counters;
  std::string response_keep_alive, response_close;
  size_t head_bytes_keep_alive = 0, head_bytes_close = 0; ///< HEAD answers stop there
  std::vector<std::vector<char>> buffers;                 ///< reused read buffers

  void build_responses() {
    auto head = [&](const char* connection) {
      return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
             std::to_string(spec.response_bytes) + "\r\nX-Backend: " + spec.name +
             "\r\nConnection: " + connection + "\r\n\r\n";
    };
    std::string body(spec.response_bytes, 'x');
    response_keep_alive = head("keep-alive");
    head_bytes_keep_alive = response_keep_alive.size();
    response_keep_alive += body;
    response_close = head("close");
    head_bytes_close = response_close.size();
    response_close += body;
  }

  std::vector<char> take_buffer() {
    if (buffers.empty()) return std::vector<char>(initial_buffer);
    auto b = std::move(buffers.back());
    buffers.pop_back();
    return b;
  }
  void give_back(std::vector<char>&& b) {
    if (buffers.size() < pooled_buffers && b.size() == initial_buffer)
      buffers.push_back(std::move(b));
  }

  net::awaitable<void> wait_resume() {
    error_code ec;
    co_await resume_signal.async_wait(net::redirect_error(net::use_awaitable, ec));
  }

  void close_connections(bool reset) {
    for (auto& c : connections) {
      c.timer.cancel();
      if (!c.socket.is_open()) continue;
      error_code ec;
      if (reset) {
        c.socket.set_option(net::socket_base::linger(true, 0), ec);
        ++counters.resets_sent;
      }
      c.socket.close(ec);
    }
  }

  void close_acceptor() {
    if (!acceptor.is_open()) return;
    ++listen_generation;
    error_code ec;
    acceptor.close(ec); // the kernel resets every un-accepted child (inet_csk_listen_stop)
  }
};

namespace {

// Asio opens and accepts without O_CLOEXEC. A command run meanwhile (ss, nstat) would inherit
// the fds, and a socket is only closed in the kernel when its last fd goes: kill() must not
// depend on what else the process forked.
void set_cloexec(int fd) {
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/// Returns a read buffer to the pool however the coroutine ends.
struct pooled_buffer {
  backend_impl& owner;
  std::vector<char> data;
  explicit pooled_buffer(backend_impl& o) : owner(o), data(o.take_buffer()) {}
  ~pooled_buffer() { owner.give_back(std::move(data)); }
  pooled_buffer(const pooled_buffer&) = delete;
  pooled_buffer& operator=(const pooled_buffer&) = delete;
};

// Reads some bytes unless frozen (then waits for resume first). A read cancelled by freeze()
// is simply issued again after resume; the kernel kept the bytes. Sets ec on EOF, errors and
// when the socket was closed by kill/reset_all.
net::awaitable<size_t> read_some(backend_impl& self, connection& c, net::mutable_buffer into,
                                 error_code& ec) {
  for (;;) {
    if (self.frozen && c.socket.is_open()) {
      co_await self.wait_resume();
      continue;
    }
    if (!c.socket.is_open()) {
      ec = net::error::bad_descriptor;
      co_return 0;
    }
    size_t n = co_await c.socket.async_read_some(into, net::redirect_error(net::use_awaitable, ec));
    self.counters.bytes_in += n;
    if (ec == net::error::operation_aborted && c.socket.is_open()) continue;
    co_return n;
  }
}

// Writes all of `data`, pausing while frozen (the unwritten rest stays in "process memory").
net::awaitable<bool> write_all(backend_impl& self, connection& c, net::const_buffer data) {
  size_t done = 0;
  while (done < data.size()) {
    if (self.frozen && c.socket.is_open()) {
      co_await self.wait_resume();
      continue;
    }
    if (!c.socket.is_open()) co_return false;
    error_code ec;
    size_t n = co_await net::async_write(c.socket, net::buffer(data + done),
                                         net::redirect_error(net::use_awaitable, ec));
    done += n;
    self.counters.bytes_out += n;
    if (ec == net::error::operation_aborted && c.socket.is_open()) continue;
    if (ec) co_return false;
  }
  co_return true;
}

// Reads and discards until EOF or error (the peer closed, or we were killed/reset).
net::awaitable<void> discard_until_eof(backend_impl& self, connection& c, std::vector<char>& buf) {
  for (;;) {
    error_code ec;
    co_await read_some(self, c, net::buffer(buf), ec);
    if (ec) co_return;
  }
}

// Closes the socket at the linger deadline unless the reader finished first (it cancels us).
// A frozen process closes nothing, so the deadline waits for resume.
net::awaitable<void> linger_guard(std::shared_ptr<backend_impl> self,
                                  std::shared_ptr<connection> c) {
  error_code ec;
  co_await c->timer.async_wait(net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return;
  while (self->frozen && c->socket.is_open())
    co_await self->wait_resume();
  c->socket.close(ec);
}

// Ends an http connection after its last answer: close at once if the client has nothing in
// flight (FIN), else send FIN, drain what still comes for a while, then close.
net::awaitable<void> close_gracefully(std::shared_ptr<backend_impl> self,
                                      std::shared_ptr<connection> c, std::vector<char>& buf,
                                      bool bytes_pending) {
  error_code ec;
  if (!c->socket.is_open()) co_return;
  if (!bytes_pending && c->socket.available(ec) == 0 && !ec) {
    c->socket.close(ec);
    co_return;
  }
  c->socket.shutdown(tcp::socket::shutdown_send, ec);
  c->timer.expires_after(linger_timeout);
  net::co_spawn(self->io, linger_guard(self, c), net::detached);
  co_await discard_until_eof(*self, *c, buf);
  c->timer.cancel();
  c->socket.close(ec);
}

std::string_view error_response(request_status s) {
  if (s == request_status::too_large)
    return "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
           "Connection: close\r\n\r\n";
  return "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
}

net::awaitable<void> serve_http(std::shared_ptr<backend_impl> self, std::shared_ptr<connection> c) {
  backend_impl& b = *self;
  pooled_buffer pool(b);
  std::vector<char>& buf = pool.data;
  size_t begin = 0, end = 0; // unread bytes are buf[begin, end)
  request_parser request;
  bool continued = false; // 100 Continue sent for this request
  error_code ec;
  for (;;) {
    // Bodies (Content-Length or chunked) are counted and dropped as they are parsed, never
    // stored: they may be large (docs/incident.md: up to 100 KB).
    begin += request.feed(std::string_view(buf.data() + begin, end - begin));
    request_status status = request.status();
    if (status == request_status::incomplete) {
      if (request.head_done() && request.expect_continue() && !continued) {
        static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
        if (!co_await write_all(b, *c, net::buffer(go_on.data(), go_on.size()))) break;
        continued = true;
      }
      if (begin > 0) {
        std::memmove(buf.data(), buf.data() + begin, end - begin);
        end -= begin;
        begin = 0;
      }
      // A head is parsed only when whole: room for it, and one byte past the limit so that the
      // parser can tell "too large".
      if (end == buf.size()) buf.resize(std::min(buf.size() * 2, max_request_head + 1));
      if (end < buf.size()) {
        size_t n = co_await read_some(b, *c, net::buffer(buf.data() + end, buf.size() - end), ec);
        if (ec) break; // EOF mid-request or before the next one, or we were killed
        end += n;
        continue;
      }
      // The limit's worth of bytes and still no end: of the head, or of a chunk-size line.
      status = request.head_done() ? request_status::bad : request_status::too_large;
    }
    if (status != request_status::complete) {
      ++b.counters.bad_requests;
      auto answer = error_response(status);
      if (co_await write_all(b, *c, net::buffer(answer.data(), answer.size())))
        co_await close_gracefully(self, c, buf, true);
      break;
    }
    if (begin == end) begin = end = 0;
    if (b.spec.service_time_ms > 0) {
      c->timer.expires_after(std::chrono::milliseconds(b.spec.service_time_ms));
      co_await c->timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      if (!c->socket.is_open()) break;
    }
    bool keep = request.keep_alive() && b.spec.keep_alive;
    const std::string& r = keep ? b.response_keep_alive : b.response_close;
    size_t size =
        request.head_method() ? (keep ? b.head_bytes_keep_alive : b.head_bytes_close) : r.size();
    if (!co_await write_all(b, *c, net::buffer(r.data(), size))) break;
    ++b.counters.requests_served;
    if (!keep) {
      co_await close_gracefully(self, c, buf, begin != end);
      break;
    }
    request.next();
    continued = false;
  }
  c->socket.close(ec);
}

net::awaitable<void> serve_stream(std::shared_ptr<backend_impl> self,
                                  std::shared_ptr<connection> c) {
  backend_impl& b = *self;
  pooled_buffer pool(b);
  std::vector<char>& buf = pool.data;
  error_code ec;
  if (b.kind == backend_kind::grpc_preface) {
    if (co_await write_all(b, *c, net::buffer(grpc_preface))) ++b.counters.requests_served;
    co_await discard_until_eof(b, *c, buf);
  } else if (b.kind == backend_kind::sink) {
    co_await discard_until_eof(b, *c, buf);
  } else { // echo
    for (;;) {
      size_t n = co_await read_some(b, *c, net::buffer(buf), ec);
      if (ec || !co_await write_all(b, *c, net::buffer(buf.data(), n))) break;
    }
  }
  c->socket.close(ec); // after EOF: FIN, the peer's half is already closed
}

// Every expected network outcome is an error_code; an exception ending a session is a bug. Keep
// serving the other connections rather than taking the whole run down, but count it and keep
// its message, so that a run shows it (backend.B.session_failures) instead of hiding it.
auto count_failure(std::shared_ptr<backend_impl> self) {
  return [self = std::move(self)](std::exception_ptr e) {
    if (!e) return;
    ++self->counters.session_failures;
    try {
      std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& x) {
      if (self->counters.first_failure.empty()) self->counters.first_failure = x.what();
    } catch (...) {
      if (self->counters.first_failure.empty()) self->counters.first_failure = "unknown exception";
    }
  };
}

net::awaitable<void> accept_loop(std::shared_ptr<backend_impl> self, uint64_t listen_gen,
                                 uint64_t process_gen) {
  backend_impl& b = *self;
  net::steady_timer backoff(b.io);
  for (;;) {
    if (b.listen_generation != listen_gen) co_return;
    if (b.frozen) {
      co_await b.wait_resume();
      continue;
    }
    error_code ec;
    tcp::socket s = co_await b.acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
    if (!ec) {
      // Accepted before a kill() reached us: it was the dead process's fd; closing it here does
      // what exit() would have done. Otherwise serve it, even if the listener closed meanwhile.
      if (b.process_generation != process_gen) continue;
      set_cloexec(s.native_handle());
      ++b.counters.accepted;
      auto c = std::make_shared<connection>(std::move(s));
      b.connections.push_back(*c);
      if (b.kind == backend_kind::http)
        net::co_spawn(b.io, serve_http(self, std::move(c)), count_failure(self));
      else
        net::co_spawn(b.io, serve_stream(self, std::move(c)), count_failure(self));
      continue;
    }
    if (ec == net::error::operation_aborted) continue; // freeze or close: the loop re-checks
    // EMFILE and friends: like Go's accept loop, back off briefly and try again.
    ++b.counters.accept_errors;
    backoff.expires_after(std::chrono::milliseconds(10));
    co_await backoff.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
}

} // namespace
} // namespace detail

std::string_view to_string(backend_state s) {
  switch (s) {
  case backend_state::dead:
    return "dead";
  case backend_state::running:
    return "running";
  case backend_state::frozen:
    return "frozen";
  case backend_state::listener_closed:
    return "listener_closed";
  }
  return "unknown";
}

backend::backend(net::io_context& io, const lab::netns& ns, scenario::backend_spec spec,
                 net::ip::address bind_address)
    : impl_(std::make_shared<detail::backend_impl>(io, ns, std::move(spec), bind_address)) {}

backend::backend(backend&&) noexcept = default;

backend& backend::operator=(backend&& other) noexcept {
  if (this != &other) {
    if (impl_) kill();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

backend::~backend() {
  if (impl_) kill();
}

void backend::start() {
  auto& b = *impl_;
  if (b.acceptor.is_open()) return;
  try {
    lab::netns_scope in(b.ns);
    b.acceptor.open(b.endpoint.protocol());
    detail::set_cloexec(b.acceptor.native_handle());
    b.acceptor.set_option(tcp::acceptor::reuse_address(true)); // rebind over TIME_WAIT on restart
    b.acceptor.bind(b.endpoint);
    b.acceptor.listen(b.spec.backlog);
  } catch (const boost::system::system_error& e) {
    boost::system::error_code ignored;
    b.acceptor.close(ignored);
    throw lab_error("backend '" + b.spec.name + "': listen on " + b.endpoint.address().to_string() +
                    ":" + std::to_string(b.endpoint.port()) + " in namespace '" + b.ns.name() +
                    "': " + e.code().message());
  }
  b.endpoint = b.acceptor.local_endpoint(); // keep the kernel's port for restart()
  if (!b.alive) {
    b.alive = true;
    b.frozen = false;
  }
  ++b.listen_generation;
  net::co_spawn(b.io, detail::accept_loop(impl_, b.listen_generation, b.process_generation),
                detail::count_failure(impl_));
}

void backend::kill() {
  auto& b = *impl_;
  ++b.process_generation;
  b.alive = false;
  b.frozen = false;
  b.close_acceptor();
  b.close_connections(false); // close(): FIN, or RST where unread data is left (tcp_close)
  b.resume_signal.cancel();   // waiters wake, find their sockets closed and end
}

void backend::freeze() {
  auto& b = *impl_;
  if (!b.alive || b.frozen) return;
  b.frozen = true;
  // Pending operations would otherwise still run in the reactor: accept() and recv() done on
  // behalf of a stopped process. Cancelled ones are issued again after resume().
  boost::system::error_code ec;
  if (b.acceptor.is_open()) b.acceptor.cancel(ec);
  for (auto& c : b.connections)
    if (c.socket.is_open()) c.socket.cancel(ec);
}

void backend::resume() {
  auto& b = *impl_;
  if (!b.frozen) return;
  b.frozen = false;
  b.resume_signal.cancel();
}

void backend::close_listener() {
  impl_->close_acceptor();
}

void backend::reset_all() {
  impl_->close_connections(true);
}

void backend::restart() {
  kill();
  start();
}

backend_state backend::state() const {
  const auto& b = *impl_;
  if (!b.alive) return backend_state::dead;
  if (b.frozen) return backend_state::frozen;
  if (!b.acceptor.is_open()) return backend_state::listener_closed;
  return backend_state::running;
}

bool backend::listening() const {
  return impl_->acceptor.is_open();
}

backend_stats backend::stats() const {
  backend_stats s = impl_->counters;
  s.active = 0;
  for (const auto& c : impl_->connections)
    if (c.socket.is_open()) ++s.active;
  return s;
}

const std::string& backend::name() const {
  return impl_->spec.name;
}
const scenario::backend_spec& backend::spec() const {
  return impl_->spec;
}
backend_kind backend::kind() const {
  return impl_->kind;
}
tcp::endpoint backend::local_endpoint() const {
  return impl_->endpoint;
}

} // namespace backlog_lab::backends
