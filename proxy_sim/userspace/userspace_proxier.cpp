#include "proxy_sim/userspace/userspace_proxier.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/intrusive/list.hpp>
#include <cerrno>
#include <chrono>
#include <exception>
#include <set>

#include "harness/core/error.hpp"
#include "harness/lab/sysctl.hpp"
#include "proxy_sim/node_port.hpp"
#include "proxy_sim/userspace/round_robin.hpp"
#include "proxy_sim/userspace/socket_pool.hpp"

namespace backlog_lab::proxy_sim {

namespace {

using error_code = boost::system::error_code;
namespace bi = boost::intrusive;

/// Per direction; reused for the session's whole life (no allocation per chunk).
constexpr std::size_t copy_buffer_bytes = 16 * 1024;
/// Outbound sockets opened per setns(2) round trip.
constexpr std::size_t socket_batch = 64;
/// After accept() fails for lack of resources (EMFILE...): kube-proxy panics; we pause and retry.
constexpr std::chrono::milliseconds accept_error_pause{50};

} // namespace

/// One proxied connection: the accepted client socket, the dialed backend socket, and a buffer
/// per direction.
struct copy_session : bi::list_base_hook<bi::link_mode<bi::auto_unlink>> {
  copy_session(tcp::socket in, tcp::socket out) : client(std::move(in)), backend(std::move(out)) {}

  void close_both() {
    error_code ignored;
    client.close(ignored);
    backend.close(ignored);
  }

  tcp::socket client;
  tcp::socket backend;
  int directions_open = 2; ///< half-close mode: both ends are closed when this reaches 0
  int pumps_running = 2;
  std::array<char, copy_buffer_bytes> to_backend_buffer;
  std::array<char, copy_buffer_bytes> to_client_buffer;
};

/// A Service as the proxier runs it: its balancer and its NodePort listener with the state of
/// the one dial its accept loop may have in flight.
struct service_runtime {
  service_runtime(net::io_context& io, service_endpoints s, bool affinity, std::chrono::seconds ttl)
      : spec(std::move(s)), balancer(affinity, ttl), acceptor(io), dial(io), dial_timer(io) {}

  service_endpoints spec;
  round_robin balancer;
  tcp::acceptor acceptor;
  tcp::socket dial; ///< the outbound socket being connected (one at a time: synchronous)
  net::steady_timer dial_timer;
  uint64_t dial_seq = 0; ///< bumped when a try ends, so a late timer handler does nothing
  bool dial_timed_out = false;
};

/// Everything the coroutines share; held by shared_ptr so that handlers still queued in the
/// io_context after stop() or destruction find it alive.
class userspace_core : public std::enable_shared_from_this<userspace_core> {
public:
  userspace_core(net::io_context& io, const lab::netns& node, const scenario::proxy_spec& spec,
                 std::vector<service_endpoints> services, uint64_t seed)
      : io_(io), node_(node.duplicate()), spec_(spec), rng_(seed), pool_(io, node, socket_batch) {
    if (spec.backlog < -1)
      throw input_error("/proxy/backlog", "-1 (somaxconn, as Go's net.Listen) or a backlog >= 0");
    if (spec.dial_timeouts_ms.empty())
      throw input_error("/proxy/dial_timeouts_ms", "at least one dial timeout");
    for (std::size_t i = 0; i < spec.dial_timeouts_ms.size(); ++i)
      if (spec.dial_timeouts_ms[i] == 0)
        throw input_error("/proxy/dial_timeouts_ms/" + std::to_string(i), "a timeout > 0 ms");
    if (spec.session_affinity != "None" && spec.session_affinity != "ClientIP")
      throw input_error("/proxy/session_affinity", "\"None\" or \"ClientIP\"");
    bool affinity = spec.session_affinity == "ClientIP";
    std::set<std::string> names;
    std::set<uint16_t> ports;
    for (std::size_t i = 0; i < services.size(); ++i) {
      auto& s = services[i];
      const std::string where = "/services/" + std::to_string(i);
      if (!names.insert(s.service).second)
        throw input_error(where + "/name", "a unique service name; '" + s.service + "' repeats");
      if (s.node_port != 0 && !ports.insert(s.node_port).second)
        throw input_error(where + "/node_port",
                          "a unique node port; " + std::to_string(s.node_port) + " is taken");
      auto endpoints = std::move(s.endpoints);
      auto& rt = *services_.emplace_back(std::make_unique<service_runtime>(
          io_, std::move(s), affinity, std::chrono::seconds(spec.affinity_timeout_s)));
      rt.balancer.update(std::move(endpoints), rng_);
    }
    backlog_ = node_port_backlog(spec, node_);
  }

  void start() {
    if (started_ || stopped_) return;
    started_ = true;
    {
      lab::netns_scope in(node_); // the listeners belong to the node namespace for good
      for (auto& s : services_)
        open_listener(*s);
    }
    for (auto& s : services_)
      net::co_spawn(io_, accept_loop(shared_from_this(), s.get()), on_coroutine_end());
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    error_code ignored;
    for (auto& s : services_) {
      s->acceptor.close(ignored);
      s->dial_timer.cancel();
      s->dial.close(ignored);
    }
    for (auto& session : sessions_)
      session.close_both();
    pool_.clear();
  }

  void update_endpoints(const std::string& service, std::vector<tcp::endpoint> endpoints) {
    find(service).balancer.update(std::move(endpoints), rng_);
  }

  service_runtime& find(const std::string& service) const {
    for (auto& s : services_)
      if (s->spec.service == service) return *s;
    throw input_error("service '" + service + "'", "a service the proxier was given");
  }

  proxier_stats stats_;
  userspace_stats detail_;
  int backlog_ = 0;

private:
  void open_listener(service_runtime& s) {
    listen_node_port(s.acceptor, node_, s.spec.node_port, backlog_,
                     "NodePort " + std::to_string(s.spec.node_port) + " of service '" +
                         s.spec.service + "' in namespace '" + node_.name() + "'");
  }

  /// co_spawn's completion: the coroutines handle network errors themselves, so an exception
  /// here is a bug or resource exhaustion; count it rather than let it escape io.run().
  struct coroutine_end {
    std::shared_ptr<userspace_core> self;
    void operator()(std::exception_ptr e) const {
      if (e) ++self->detail_.internal_errors;
    }
  };
  coroutine_end on_coroutine_end() { return coroutine_end{shared_from_this()}; }

  /// ProxyLoop: accept one connection, dial for it, hand both to a session, accept again.
  static net::awaitable<void> accept_loop(std::shared_ptr<userspace_core> self,
                                          service_runtime* s) {
    tcp::endpoint peer;
    for (;;) {
      error_code ec;
      tcp::socket in =
          co_await s->acceptor.async_accept(peer, net::redirect_error(net::use_awaitable, ec));
      if (self->stopped_ || ec == net::error::operation_aborted) co_return;
      if (ec) {
        ++self->detail_.accept_errors;
        s->dial_timer.expires_after(accept_error_pause);
        co_await s->dial_timer.async_wait(net::redirect_error(net::use_awaitable, ec));
        if (self->stopped_) co_return;
        continue;
      }
      ++self->stats_.accepted;
      in.set_option(tcp::no_delay(true), ec); // Go sets TCP_NODELAY on every TCP conn
      bool connected = co_await try_connect(self, s, unmapped(peer.address()));
      if (self->stopped_) co_return;
      if (!connected) {
        // "failed to connect to an endpoint." / no endpoints: inConn.Close().
        in.close(ec);
        continue;
      }
      self->start_session(std::move(in), std::move(s->dial));
    }
  }

  /// tryConnect: one try per dial timeout, NextEndpoint each time, affinity reset after a
  /// failure. On success the connected socket is left in s->dial.
  static net::awaitable<bool> try_connect(std::shared_ptr<userspace_core> self, service_runtime* s,
                                          net::ip::address client) {
    bool affinity_reset = false;
    for (uint32_t timeout_ms : self->spec_.dial_timeouts_ms) {
      auto endpoint = s->balancer.next(client, affinity_reset, round_robin::clock::now());
      if (!endpoint) {
        ++self->detail_.closed_no_endpoints;
        co_return false;
      }
      ++self->stats_.dial_attempts;
      error_code ec = self->start_connect(s, *endpoint);
      if (ec == net::error::in_progress) {
        self->arm_dial_timeout(s, std::chrono::milliseconds(timeout_ms));
        co_await s->dial.async_wait(tcp::socket::wait_write,
                                    net::redirect_error(net::use_awaitable, ec));
        ++s->dial_seq;
        s->dial_timer.cancel();
        if (self->stopped_) co_return false;
        // The timer may have closed the socket in the same turn as the connect completed.
        if (s->dial_timed_out)
          ec = net::error::timed_out;
        else if (!ec)
          ec = connect_result(s->dial);
      }
      if (!ec) {
        s->dial.set_option(tcp::no_delay(true), ec);
        co_return true;
      }
      ++self->stats_.dial_failures;
      if (ec == net::error::connection_refused)
        ++self->detail_.dial_refused;
      else if (ec == net::error::timed_out)
        ++self->detail_.dial_timeouts;
      else
        ++self->detail_.dial_other_errors;
      error_code ignored;
      s->dial.close(ignored);
      affinity_reset = true;
    }
    ++self->stats_.dial_gave_up;
    co_return false;
  }

  /// Gives s->dial a fresh socket of the node namespace and starts a non-blocking connect():
  /// in_progress while the handshake runs, success or the error if it ended at once. Done by
  /// hand rather than with async_connect to save the poll(2) Asio adds per connect.
  error_code start_connect(service_runtime* s, const tcp::endpoint& endpoint) {
    error_code ec;
    s->dial = pool_.take(endpoint.protocol(), ec);
    if (ec) return ec;
    if (::connect(s->dial.native_handle(), endpoint.data(),
                  static_cast<socklen_t>(endpoint.size())) == 0)
      return ec;
    int err = errno;
    if (err != EINPROGRESS && err != EINTR)
      return error_code(err, boost::system::system_category());
    // Over loopback and veth the handshake usually completes inside that connect() (the SYN,
    // SYN-ACK and ACK run in softirq before it returns), but the call already said EINPROGRESS.
    // A second connect() reports the outcome (0, or the error such as ECONNREFUSED) or EALREADY
    // while it is still pending: one syscall instead of a readiness wait, a dial timer and an
    // SO_ERROR check (issue 6: about a quarter of the proxy's syscalls per connection).
    if (::connect(s->dial.native_handle(), endpoint.data(),
                  static_cast<socklen_t>(endpoint.size())) == 0)
      return ec;
    err = errno;
    if (err == EALREADY || err == EINPROGRESS || err == EINTR) return net::error::in_progress;
    if (err == EISCONN) return ec;
    return error_code(err, boost::system::system_category());
  }

  /// The try's timeout closes the socket (which ends the wait) unless the try ended first.
  void arm_dial_timeout(service_runtime* s, std::chrono::milliseconds timeout) {
    s->dial_timed_out = false;
    s->dial_timer.expires_after(timeout);
    s->dial_timer.async_wait([self = shared_from_this(), s, seq = s->dial_seq](error_code e) {
      if (e || s->dial_seq != seq) return; // that try already ended
      s->dial_timed_out = true;
      error_code ignored;
      s->dial.close(ignored);
    });
  }

  /// SO_ERROR once a non-blocking connect() reports writable.
  static error_code connect_result(tcp::socket& socket) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    return error_code(err, boost::system::system_category());
  }

  void start_session(tcp::socket in, tcp::socket out) {
    auto session = std::make_shared<copy_session>(std::move(in), std::move(out));
    sessions_.push_back(*session);
    ++detail_.sessions_started;
    ++detail_.sessions_open;
    net::co_spawn(io_, pump(shared_from_this(), session, true), on_coroutine_end());
    net::co_spawn(io_, pump(shared_from_this(), session, false), on_coroutine_end());
  }

  /// copyBytes: io.Copy one direction, then close as kube-proxy did after (full) or before
  /// (half_close) kubernetes#18524.
  static net::awaitable<void> pump(std::shared_ptr<userspace_core> self,
                                   std::shared_ptr<copy_session> session, bool to_backend) {
    tcp::socket& from = to_backend ? session->client : session->backend;
    tcp::socket& to = to_backend ? session->backend : session->client;
    auto& buffer = to_backend ? session->to_backend_buffer : session->to_client_buffer;
    uint64_t& copied = to_backend ? self->stats_.bytes_to_backend : self->stats_.bytes_to_client;
    error_code ec;
    while (!self->stopped_) {
      std::size_t n = co_await from.async_read_some(net::buffer(buffer),
                                                    net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
      copied += co_await net::async_write(to, net::buffer(buffer.data(), n),
                                          net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
    }
    if (!self->spec_.half_close || self->stopped_) {
      // dest.Close(); src.Close(): also unblocks the other direction.
      session->close_both();
    } else {
      // dest.CloseWrite(); src.CloseRead(); both closed only when both directions ended.
      error_code ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);
      from.shutdown(tcp::socket::shutdown_receive, ignored);
      if (--session->directions_open == 0) session->close_both();
    }
    if (--session->pumps_running == 0) --self->detail_.sessions_open;
  }

  net::io_context& io_;
  lab::netns node_;
  scenario::proxy_spec spec_;
  shuffle_rng rng_;
  socket_pool pool_;
  std::vector<std::unique_ptr<service_runtime>> services_;
  bi::list<copy_session, bi::constant_time_size<false>> sessions_;
  bool started_ = false;
  bool stopped_ = false;
};

userspace_proxier::userspace_proxier(net::io_context& io, const lab::netns& node,
                                     const scenario::proxy_spec& spec,
                                     std::vector<service_endpoints> services, uint64_t seed)
    : core_(std::make_shared<userspace_core>(io, node, spec, std::move(services), seed)) {}

userspace_proxier::~userspace_proxier() {
  core_->stop();
}

void userspace_proxier::start() {
  core_->start();
}

void userspace_proxier::update_endpoints(const std::string& service,
                                         std::vector<tcp::endpoint> endpoints) {
  core_->update_endpoints(service, std::move(endpoints));
}

void userspace_proxier::stop() {
  core_->stop();
}

proxier_stats userspace_proxier::stats() const {
  return core_->stats_;
}

userspace_stats userspace_proxier::detail() const {
  return core_->detail_;
}

uint16_t userspace_proxier::node_port(const std::string& service) const {
  auto& s = core_->find(service);
  error_code ec;
  auto local = s.acceptor.local_endpoint(ec);
  return ec ? s.spec.node_port : local.port();
}

int userspace_proxier::listen_backlog() const {
  return core_->backlog_;
}

std::unique_ptr<proxier> make_userspace_proxier(net::io_context& io, const lab::netns& node,
                                                const scenario::proxy_spec& spec,
                                                std::vector<service_endpoints> services,
                                                uint64_t seed) {
  return std::make_unique<userspace_proxier>(io, node, spec, std::move(services), seed);
}

} // namespace backlog_lab::proxy_sim
