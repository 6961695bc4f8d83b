#include "proxy_sim/userspace/userspace_proxier.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <stdexcept>

#include "harness/core/connect.hpp"
#include "harness/core/epoll_set.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/socket_pool.hpp"
#include "harness/lab/sysctl.hpp"
#include "proxy_sim/node_port.hpp"
#include "proxy_sim/userspace/copy_session.hpp"
#include "proxy_sim/userspace/round_robin.hpp"

namespace backlog_lab::proxy_sim {

namespace {

using error_code = boost::system::error_code;

/// Outbound sockets opened per setns(2) round trip.
constexpr std::size_t socket_batch = 64;
/// accept4() calls per readiness event when they fail with EINTR/ECONNABORTED (retried, as Go's
/// accept loop does).
constexpr int accept_retries = 16;
/// After accept() fails for lack of resources (EMFILE...): kube-proxy panics; we pause and retry.
constexpr std::chrono::milliseconds accept_error_pause{50};

error_code errno_code(int err) {
  return error_code(err, boost::system::system_category());
}

/// The peer of an accepted socket as an Asio address, IPv4-mapped IPv6 turned into IPv4.
net::ip::address peer_address(const sockaddr_storage& peer) {
  if (peer.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(peer);
    return net::ip::address_v4(ntohl(a.sin_addr.s_addr));
  }
  if (peer.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(peer);
    net::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), a.sin6_addr.s6_addr, bytes.size());
    return unmapped(net::ip::address_v6(bytes, a.sin6_scope_id));
  }
  return {};
}

} // namespace

class userspace_core;

/// A Service as the proxier runs it: its balancer, its NodePort listener (watched by the
/// proxier's epoll_set) and the state of the one dial its accept loop may have in flight.
struct service_runtime final : fd_watcher {
  service_runtime(net::io_context& io, userspace_core& core, service_endpoints s, bool affinity,
                  std::chrono::seconds ttl)
      : core(core), spec(std::move(s)), balancer(affinity, ttl), dial(io), dial_timer(io),
        pause_timer(io) {}

  void on_events(std::uint32_t) override;

  userspace_core& core;
  service_endpoints spec;
  round_robin balancer;
  unique_fd listener;
  epoll_set::token registration = 0;
  tcp::socket dial; ///< a dial still in progress after connect() (one at a time: synchronous)
  net::steady_timer dial_timer;
  net::steady_timer pause_timer;
  uint64_t dial_seq = 0; ///< bumped when a try ends, so a late timer handler does nothing
  bool dial_timed_out = false;
  bool dialing = false; ///< the accept loop waits for a dial: the listener is not watched
  bool paused = false;  ///< the accept loop waits after an accept() error
};

/// Everything the proxier's handlers share; held by shared_ptr so that handlers still queued in
/// the io_context after stop() or destruction find it alive.
class userspace_core : public std::enable_shared_from_this<userspace_core> {
public:
  userspace_core(net::io_context& io, const lab::netns& node, const scenario::proxy_spec& spec,
                 std::vector<service_endpoints> services, uint64_t seed)
      : io_(io), node_(node.duplicate()), spec_(spec), rng_(seed),
        pool_(node, {.batch = socket_batch, .no_delay = true}), events_(epoll_set::create(io)),
        sessions_(events_, stats_, spec.half_close) {
    // The spec and services are the reader's validated values (harness/scenario/reader.cpp):
    // bounds, unique names and node ports are checked there, once. An empty dial list could
    // only come from code, not from a scenario, and would index out of range.
    if (spec.dial_timeouts_ms.empty())
      throw std::invalid_argument("userspace proxier: a proxy_spec without dial timeouts");
    bool affinity = spec.session_affinity == scenario::session_affinity::client_ip;
    for (auto& s : services) {
      auto endpoints = std::move(s.endpoints);
      auto& rt = *services_.emplace_back(std::make_unique<service_runtime>(
          io_, *this, std::move(s), affinity, std::chrono::seconds(spec.affinity_timeout_s)));
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
    std::weak_ptr<userspace_core> weak = shared_from_this();
    events_->on_batch_end([weak] {
      if (auto self = weak.lock()) self->sessions_.release_closed();
    });
    for (auto& s : services_)
      watch_listener(*s, true);
    events_->start();
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    events_->stop();
    error_code ignored;
    for (auto& s : services_) {
      events_->forget(s->registration);
      s->listener.reset(); // resets the un-accepted children
      s->dial_timer.cancel();
      s->pause_timer.cancel();
      s->dial.close(ignored);
    }
    sessions_.close_all();
    sessions_.release_closed();
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

  userspace_stats detail() const {
    userspace_stats d = detail_;
    d.sessions_started = sessions_.started();
    d.sessions_open = sessions_.open();
    return d;
  }

  /// ProxyLoop: accept one connection, dial for it, hand it to a session. One per readiness
  /// event: the listener is level-triggered, so a queue with more is reported again in the next
  /// batch, after the io_context's other handlers. In a lab the pods run on the same
  /// io_context; taking a whole queue at once would dial them faster than they could accept
  /// (16 dials in a row filled three pods' queues of 5, and every 16th dial waited out a
  /// timeout), where kube-proxy's pods ran beside it.
  void accept_ready(service_runtime& s) {
    for (int i = 0; i < accept_retries; ++i) {
      if (stopped_ || s.dialing || s.paused || !s.listener) return;
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof(peer);
      unique_fd in(::accept4(s.listener.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!in) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR || errno == ECONNABORTED) continue; // as Go's accept loop does
        ++detail_.accept_errors;
        pause_accepting(s);
        return;
      }
      ++stats_.accepted; // TCP_NODELAY (Go sets it per conn) is inherited from the listener
      dial(s, std::move(in), peer_address(peer));
      return;
    }
  }

  proxier_stats stats_;
  userspace_stats detail_;
  int backlog_ = 0;

private:
  void open_listener(service_runtime& s) {
    tcp::acceptor acceptor(io_);
    listen_node_port(acceptor, node_, s.spec.node_port, backlog_,
                     "NodePort " + std::to_string(s.spec.node_port) + " of service '" +
                         s.spec.service + "' in namespace '" + node_.name() + "'");
    // Accepted sockets inherit TCP_NODELAY; accept4() must not block the io_context.
    error_code ec;
    acceptor.set_option(tcp::no_delay(true), ec);
    acceptor.native_non_blocking(true, ec);
    if (ec) throw lab_error("NodePort " + std::to_string(s.spec.node_port) + ": " + ec.message());
    s.listener.reset(acceptor.release(ec));
  }

  /// Level-triggered: a listener with connections left in its queue is reported again.
  void watch_listener(service_runtime& s, bool add) {
    if (!s.listener) return;
    bool ok;
    if (add) {
      s.registration = events_->add(s.listener.get(), EPOLLIN, &s);
      ok = s.registration != 0;
    } else {
      ok = events_->modify(s.listener.get(), (s.dialing || s.paused) ? 0u : std::uint32_t{EPOLLIN},
                           s.registration);
    }
    if (!ok) ++detail_.internal_errors;
  }

  void pause_accepting(service_runtime& s) {
    s.paused = true;
    watch_listener(s, false);
    s.pause_timer.expires_after(accept_error_pause);
    s.pause_timer.async_wait([self = shared_from_this(), &s](const error_code& e) {
      if (e || self->stopped_) return;
      s.paused = false;
      self->watch_listener(s, false);
      self->accept_ready(s);
    });
  }

  /// co_spawn's completion: the coroutines handle network errors themselves, so an exception
  /// here is a bug or resource exhaustion; count it rather than let it escape io.run().
  struct coroutine_end {
    std::shared_ptr<userspace_core> self;
    void operator()(std::exception_ptr e) const {
      if (e) ++self->detail_.internal_errors;
    }
  };

  /// tryConnect's first try, inline: over loopback and veth a healthy endpoint's handshake
  /// completes inside connect(). Anything else goes on in dial_slowly while the accept loop of
  /// this Service waits, as kube-proxy's did.
  void dial(service_runtime& s, unique_fd in, const net::ip::address& client) {
    auto endpoint = s.balancer.next(client, false, round_robin::clock::now());
    if (!endpoint) {
      // "failed to connect to an endpoint." / no endpoints: inConn.Close().
      ++detail_.closed_no_endpoints;
      return;
    }
    ++stats_.dial_attempts;
    unique_fd out;
    error_code ec = start_connect(out, *endpoint);
    if (!ec) {
      sessions_.add(std::move(in), std::move(out));
      return;
    }
    s.dialing = true;
    watch_listener(s, false);
    net::co_spawn(
        io_,
        dial_slowly(shared_from_this(), &s, std::move(in), client, *endpoint, std::move(out), ec),
        coroutine_end{shared_from_this()});
  }

  /// The rest of tryConnect: one try per dial timeout, NextEndpoint each time, affinity reset
  /// after a failure; the first try (`endpoint`, `out`, `first`) was started by dial().
  static net::awaitable<void> dial_slowly(std::shared_ptr<userspace_core> self, service_runtime* s,
                                          unique_fd in, net::ip::address client,
                                          tcp::endpoint endpoint, unique_fd out, error_code first) {
    const auto& timeouts = self->spec_.dial_timeouts_ms;
    bool connected = false;
    bool gave_up = true;
    bool affinity_reset = false;
    for (std::size_t i = 0; i < timeouts.size(); ++i) {
      error_code ec = first;
      if (i > 0) {
        auto next = s->balancer.next(client, affinity_reset, round_robin::clock::now());
        if (!next) {
          ++self->detail_.closed_no_endpoints;
          gave_up = false;
          break;
        }
        endpoint = *next;
        ++self->stats_.dial_attempts;
        ec = self->start_connect(out, endpoint);
      }
      if (ec == net::error::in_progress) {
        s->dial.assign(endpoint.protocol(), out.release(), ec);
        if (!ec) {
          self->arm_dial_timeout(s, std::chrono::milliseconds(timeouts[i]));
          co_await s->dial.async_wait(tcp::socket::wait_write,
                                      net::redirect_error(net::use_awaitable, ec));
          ++s->dial_seq;
          s->dial_timer.cancel();
          if (self->stopped_) co_return;
          // The timer may have closed the socket in the same turn as the connect completed.
          if (s->dial_timed_out)
            ec = net::error::timed_out;
          else if (!ec)
            ec = connect_result(s->dial.native_handle());
          error_code ignored;
          if (s->dial.is_open()) out.reset(s->dial.release(ignored));
        }
      }
      if (!ec) {
        connected = true;
        break;
      }
      ++self->stats_.dial_failures;
      if (ec == net::error::connection_refused)
        ++self->detail_.dial_refused;
      else if (ec == net::error::timed_out)
        ++self->detail_.dial_timeouts;
      else
        ++self->detail_.dial_other_errors;
      out.reset();
      affinity_reset = true;
    }
    if (self->stopped_) co_return;
    if (connected) {
      self->sessions_.add(std::move(in), std::move(out));
    } else {
      if (gave_up) ++self->stats_.dial_gave_up;
      in.reset(); // "failed to connect to an endpoint.": inConn.Close()
    }
    s->dialing = false;
    self->watch_listener(*s, false);
    self->accept_ready(*s);
  }

  /// Gives `out` a fresh socket of the node namespace and starts a non-blocking connect():
  /// in_progress while the handshake runs, success or the error if it ended at once.
  error_code start_connect(unique_fd& out, const tcp::endpoint& endpoint) {
    out = pool_.take(endpoint.protocol().family());
    if (!out) return errno_code(errno);
    return backlog_lab::start_connect(out.get(), endpoint);
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

  net::io_context& io_;
  lab::netns node_;
  scenario::proxy_spec spec_;
  shuffle_rng rng_;
  lab::socket_pool pool_;
  std::shared_ptr<epoll_set> events_;
  copy_sessions sessions_;
  std::vector<std::unique_ptr<service_runtime>> services_;
  bool started_ = false;
  bool stopped_ = false;
};

void service_runtime::on_events(std::uint32_t) {
  core.accept_ready(*this);
}

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
  return core_->detail();
}

uint16_t userspace_proxier::node_port(const std::string& service) const {
  auto& s = core_->find(service);
  sockaddr_in6 local{};
  socklen_t len = sizeof(local);
  if (!s.listener ||
      ::getsockname(s.listener.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0)
    return s.spec.node_port;
  return ntohs(local.sin6_port); // sin6_port and sin_port sit at the same offset
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
