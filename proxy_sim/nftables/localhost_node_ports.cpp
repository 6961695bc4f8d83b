#include "proxy_sim/nftables/localhost_node_ports.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <list>
#include <map>
#include <optional>
#include <string>

#include "harness/core/connect.hpp"
#include "harness/core/epoll_set.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/socket_pool.hpp"
#include "proxy_sim/node_port.hpp"
#include "proxy_sim/userspace/copy_session.hpp"
#include "proxy_sim/userspace/round_robin.hpp"

namespace backlog_lab::proxy_sim::nftables {
namespace {

using error_code = boost::system::error_code;
using clock = std::chrono::steady_clock;

/// localnodeportproxy's dialTimeout; a dial that fails is not retried.
constexpr auto dial_timeout = std::chrono::seconds(5);
/// Go's accept loop retries at once after an error; a pause keeps EMFILE from spinning ours.
constexpr auto accept_error_pause = std::chrono::milliseconds(50);

/// A dial whose handshake did not end inside connect(): the accepted client waits with it.
struct pending_dial {
  explicit pending_dial(net::io_context& io) : socket(io), timer(io) {}
  tcp::socket socket;
  net::steady_timer timer;
  unique_fd client;
  bool timed_out = false;
};

} // namespace

/// One Service's listener with what hangs on it: its endpoints, the pinned endpoint, the dials
/// in flight and the copy sessions (all closed when the listener goes).
struct localhost_listener final : fd_watcher, std::enable_shared_from_this<localhost_listener> {
  localhost_listener(localhost_proxy_core& core, net::io_context& io,
                     std::shared_ptr<epoll_set> events, proxier_stats& stats)
      : core(core), pause_timer(io), sessions(std::move(events), stats, true) {}
  void on_events(std::uint32_t) override;

  localhost_proxy_core& core;
  uint16_t port = 0;
  unique_fd fd;
  epoll_set::token registration = 0;
  std::vector<tcp::endpoint> endpoints;
  std::optional<tcp::endpoint> pinned; ///< ClientIP affinity: one pin, every peer is 127.0.0.1
  clock::time_point pinned_last_used{};
  net::steady_timer pause_timer;
  copy_sessions sessions;
  std::list<std::shared_ptr<pending_dial>> dials;
  bool closed = false;
};

/// What the handlers share; held by shared_ptr so that handlers still queued after shutdown
/// find it alive.
class localhost_proxy_core : public std::enable_shared_from_this<localhost_proxy_core> {
public:
  localhost_proxy_core(net::io_context& io, const lab::netns& node,
                       const scenario::proxy_spec& spec, uint64_t seed)
      : io_(io), node_(node.duplicate()),
        affinity_(spec.session_affinity == scenario::session_affinity::client_ip),
        affinity_ttl_(spec.affinity_timeout_s), rng_(seed),
        pool_(node, {.batch = 16, .no_delay = true}), events_(epoll_set::create(io)) {
    backlog_ = go_listen_backlog(node);
  }

  void sync(const std::vector<service_endpoints>& services) {
    if (stopped_) return;
    std::map<uint16_t, std::vector<tcp::endpoint>> wanted;
    for (const auto& s : services) {
      auto endpoints = s.endpoints;
      if (!s.external_policy_local)
        endpoints.insert(endpoints.end(), s.other_node_endpoints.begin(),
                         s.other_node_endpoints.end());
      if (!endpoints.empty()) wanted[s.node_port] = std::move(endpoints);
    }
    for (auto it = active_.begin(); it != active_.end();) {
      if (wanted.count(it->first)) {
        ++it;
        continue;
      }
      close_listener(*it->second);
      it = active_.erase(it);
    }
    for (auto& [port, endpoints] : wanted) {
      if (auto it = active_.find(port); it != active_.end()) {
        it->second->endpoints = std::move(endpoints); // the pin stays if still listed
        continue;
      }
      auto l = std::make_shared<localhost_listener>(*this, io_, events_, stats_);
      l->port = port;
      l->endpoints = std::move(endpoints);
      if (!open_listener(*l)) continue;
      active_.emplace(port, l);
    }
    if (!events_started_) {
      events_started_ = true;
      std::weak_ptr<localhost_proxy_core> weak = shared_from_this();
      events_->on_batch_end([weak] {
        if (auto self = weak.lock())
          for (auto& [port, l] : self->active_)
            l->sessions.release_closed();
      });
      events_->start();
    }
  }

  void shutdown() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& [port, l] : active_)
      close_listener(*l);
    active_.clear();
    events_->stop();
    pool_.clear();
  }

  /// acceptLoop: every queued connection now, each handed to its own dial.
  void accept_all(localhost_listener& l) {
    while (!l.closed) {
      unique_fd in(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!in) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR || errno == ECONNABORTED) continue;
        note_error("accept on 127.0.0.1:" + std::to_string(l.port) + ": " + std::strerror(errno));
        pause_accepting(l);
        return;
      }
      ++stats_.accepted;
      handle(l, std::move(in));
    }
  }

  proxier_stats stats_;
  uint64_t listen_failures_ = 0;

  /// An error kube-proxy would log: kept (the first five) in the stats' sync_errors.
  void note_error(std::string message) {
    if (stats_.sync_errors.size() < 5) stats_.sync_errors.push_back(std::move(message));
  }
  std::map<uint16_t, std::shared_ptr<localhost_listener>> active_;
  int backlog_ = 0;

private:
  bool open_listener(localhost_listener& l) {
    try {
      tcp::acceptor acceptor(io_);
      listen_node_port(acceptor, node_, l.port, backlog_,
                       "localhost NodePort 127.0.0.1:" + std::to_string(l.port),
                       node_port_socket::loopback);
      error_code ec;
      acceptor.set_option(tcp::no_delay(true), ec); // Go sets it on every TCP connection
      acceptor.native_non_blocking(true, ec);
      if (ec) throw lab_error(ec.message());
      l.fd.reset(acceptor.release(ec));
    } catch (const std::exception& e) {
      // "Failed to create localhost nodeport proxy": logged, counted, the sync goes on.
      ++listen_failures_;
      note_error(e.what());
      return false;
    }
    l.registration = events_->add(l.fd.get(), EPOLLIN, &l);
    if (l.registration == 0) {
      note_error("watching 127.0.0.1:" + std::to_string(l.port) + ": " + std::strerror(errno));
      l.fd.reset();
      return false;
    }
    return true;
  }

  void close_listener(localhost_listener& l) {
    l.closed = true;
    events_->forget(l.registration);
    l.fd.reset(); // resets connections still in its queue
    l.pause_timer.cancel();
    for (auto& d : l.dials) {
      error_code ignored;
      d->timer.cancel();
      d->socket.close(ignored);
      d->client.reset();
    }
    l.dials.clear();
    l.sessions.close_all(); // the context's cancel: both sides of every connection closed
    l.sessions.release_closed();
  }

  void pause_accepting(localhost_listener& l) {
    events_->modify(l.fd.get(), 0, l.registration);
    l.pause_timer.expires_after(accept_error_pause);
    l.pause_timer.async_wait([self = shared_from_this(), l = l.shared_from_this()](error_code e) {
      if (e || l->closed) return;
      self->events_->modify(l->fd.get(), EPOLLIN, l->registration);
    });
  }

  /// pickEndpoint: the pin while it is fresh and still listed, else a random endpoint.
  std::optional<tcp::endpoint> pick(localhost_listener& l) {
    if (l.endpoints.empty()) return std::nullopt;
    const auto now = clock::now();
    if (affinity_ && l.pinned && now - l.pinned_last_used <= affinity_ttl_ &&
        std::find(l.endpoints.begin(), l.endpoints.end(), *l.pinned) != l.endpoints.end()) {
      l.pinned_last_used = now;
      return l.pinned;
    }
    auto endpoint = l.endpoints[rng_.below(l.endpoints.size())];
    if (affinity_) {
      l.pinned = endpoint;
      l.pinned_last_used = now;
    }
    return endpoint;
  }

  /// handleTCPConn: dial, then copy; on any failure the client is closed.
  void handle(localhost_listener& l, unique_fd in) {
    auto endpoint = pick(l);
    if (!endpoint) return;
    ++stats_.dial_attempts;
    unique_fd out = pool_.take(endpoint->protocol().family());
    error_code ec = out ? start_connect(out.get(), *endpoint)
                        : error_code(errno, boost::system::system_category());
    if (!ec) {
      l.sessions.add(std::move(in), std::move(out));
      return;
    }
    if (ec == net::error::in_progress) {
      auto d = std::make_shared<pending_dial>(io_);
      d->socket.assign(endpoint->protocol(), out.release(), ec);
      if (!ec) {
        d->client = std::move(in);
        l.dials.push_back(d);
        net::co_spawn(io_, finish_dial(shared_from_this(), l.shared_from_this(), d),
                      [self = shared_from_this()](std::exception_ptr e) {
                        if (e) self->note_error("a dial ended by an unexpected exception");
                      });
        return;
      }
    }
    ++stats_.dial_failures;
    ++stats_.dial_gave_up; // no retry: "Failed to connect to backend", clientConn.Close()
  }

  static net::awaitable<void> finish_dial(std::shared_ptr<localhost_proxy_core> self,
                                          std::shared_ptr<localhost_listener> l,
                                          std::shared_ptr<pending_dial> d) {
    d->timer.expires_after(dial_timeout);
    d->timer.async_wait([d](error_code e) {
      if (e) return;
      d->timed_out = true;
      error_code ignored;
      d->socket.close(ignored);
    });
    error_code ec;
    co_await d->socket.async_wait(tcp::socket::wait_write,
                                  net::redirect_error(net::use_awaitable, ec));
    d->timer.cancel();
    l->dials.remove(d);
    if (l->closed) co_return; // close_listener closed both sides already
    if (d->timed_out)
      ec = net::error::timed_out;
    else if (!ec)
      ec = connect_result(d->socket.native_handle());
    if (ec) {
      ++self->stats_.dial_failures;
      ++self->stats_.dial_gave_up;
      d->client.reset();
      co_return;
    }
    error_code ignored;
    unique_fd out(d->socket.release(ignored));
    l->sessions.add(std::move(d->client), std::move(out));
  }

  net::io_context& io_;
  lab::netns node_;
  bool affinity_;
  std::chrono::seconds affinity_ttl_;
  shuffle_rng rng_;
  lab::socket_pool pool_;
  std::shared_ptr<epoll_set> events_;
  bool events_started_ = false;
  bool stopped_ = false;
};

void localhost_listener::on_events(std::uint32_t) {
  core.accept_all(*this);
}

localhost_node_ports::localhost_node_ports(net::io_context& io, const lab::netns& node,
                                           const scenario::proxy_spec& spec, uint64_t seed)
    : core_(std::make_shared<localhost_proxy_core>(io, node, spec, seed)) {}

localhost_node_ports::~localhost_node_ports() {
  try {
    core_->shutdown();
  } catch (...) {
    // Closing descriptors does not fail in a way worth more than the namespace's own teardown.
  }
}

void localhost_node_ports::sync(const std::vector<service_endpoints>& services) {
  core_->sync(services);
}

void localhost_node_ports::shutdown() {
  core_->shutdown();
}

void localhost_node_ports::add_stats(proxier_stats& stats) const {
  const auto& s = core_->stats_;
  stats.accepted += s.accepted;
  stats.dial_attempts += s.dial_attempts;
  stats.dial_failures += s.dial_failures;
  stats.dial_gave_up += s.dial_gave_up;
  stats.bytes_to_backend += s.bytes_to_backend;
  stats.bytes_to_client += s.bytes_to_client;
  stats.listen_failures += core_->listen_failures_;
  for (const auto& e : s.sync_errors)
    if (stats.sync_errors.size() < 5) stats.sync_errors.push_back(e);
}

} // namespace backlog_lab::proxy_sim::nftables
