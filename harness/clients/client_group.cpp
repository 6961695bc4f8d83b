#include "harness/clients/client_group.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <random>

#include "harness/clients/arrival_schedule.hpp"
#include "harness/clients/connection.hpp"
#include "harness/clients/deadline_list.hpp"
#include "harness/clients/http_message.hpp"
#include "harness/core/connect.hpp"
#include "harness/core/epoll_set.hpp"
#include "harness/core/error.hpp"
#include "harness/core/unique_fd.hpp"
#include "harness/lab/socket_pool.hpp"

namespace backlog_lab::clients {
namespace detail {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

using arrival_kind = scenario::arrival;

/// Launches per generator turn before yielding to other handlers (a generator that fell far
/// behind catches up in bursts instead of starving the io_context).
constexpr int max_burst = 256;
/// Pre-created sockets per namespace switch, at most.
constexpr std::size_t max_socket_batch = 64;

/// A deadline_list with the timer armed for its head and the outcome of an expiry.
struct timed_list {
  timed_list(net::io_context& io, clock::duration timeout, outcome on_expiry)
      : list(timeout), timer(io), on_expiry(on_expiry) {}
  deadline_list list;
  net::steady_timer timer;
  outcome on_expiry;
  bool armed = false;
};

} // namespace

/// Everything a client_group owns; shared with its pending handlers.
class group_state : public std::enable_shared_from_this<group_state>, public slot_events {
public:
  group_state(net::io_context& io, const lab::netns& ns, const scenario::client_group_spec& spec,
              tcp::endpoint target, const std::vector<std::string>& sources, std::uint64_t seed,
              clock::time_point run_start, group_options options)
      : io_(io), spec_(spec), where_("client group '" + spec.name + "'"), kind_(spec.arrival),
        target_(target), run_start_(run_start), options_(options),
        request_(spec.request_kind, spec.request_bytes.min, spec.request_bytes.max, where_),
        schedule_(spec, seed), size_rng_(seed ^ 0x9e3779b97f4a7c15ULL), generator_(io),
        events_(epoll_set::create(io)),
        pool_(ns, {.batch = 1, .adaptive = true, .max_batch = max_socket_batch}),
        connect_list_(io, std::chrono::milliseconds(spec.connect_timeout_ms),
                      outcome::syn_unanswered),
        // With no response to wait for, sending must still end some time: the connect timeout.
        response_list_(io,
                       std::chrono::milliseconds(spec.response_timeout_ms > 0
                                                     ? spec.response_timeout_ms
                                                     : spec.connect_timeout_ms),
                       outcome::unanswered) {
    for (const auto& text : sources) {
      boost::system::error_code ec;
      auto address = net::ip::make_address(text, ec);
      if (ec) throw input_error(where_, "a source IP address, got \"" + text + "\"");
      if (address.is_v4() != target_.address().is_v4())
        throw input_error(where_, "source address " + text + " of the target's family (" +
                                      target_.address().to_string() + ")");
      sources_.push_back(address);
    }
    http_response_ = request_.kind() == request_kind::http && spec_.request_bytes.max > 0;
    results_.records.reserve(std::min<std::size_t>(options_.max_records, 4096));
  }

  ~group_state() { events_->stop(); }

  void start() {
    if (aborted_ || running_) return;
    running_ = true;
    events_->start();
    started_once_ = true;
    ++epoch_;
    schedule_.begin(now_ns());
    arm_generator(schedule_.next_ns());
  }

  void stop() {
    running_ = false;
    ++epoch_;
    generator_.cancel();
    release_timers_if_done();
  }

  void abort() {
    if (aborted_) return;
    stop();
    aborted_ = true;
    for (auto& s : slots_.all())
      if (s.state != phase::idle) complete(s, outcome::aborted, 0);
    connect_list_.timer.cancel();
    response_list_.timer.cancel();
    pool_.clear();
  }

  bool idle() const noexcept { return in_flight_ == 0; }
  bool finished() const noexcept { return started_once_ && !running_ && in_flight_ == 0; }
  std::size_t in_flight() const noexcept { return in_flight_; }
  const client_results& results() const noexcept { return results_; }
  const scenario::client_group_spec& spec() const noexcept { return spec_; }
  void on_finished(std::function<void(const connection_record&)> cb) {
    on_finished_ = std::move(cb);
  }

private:
  std::int64_t now_ns() const noexcept {
    return std::chrono::duration_cast<nanoseconds>(clock::now() - run_start_).count();
  }

  // --- arrivals -------------------------------------------------------------------------------

  bool may_start(std::int64_t intended) const noexcept {
    return schedule_.may_start(intended, results_.started);
  }

  void arm_generator(std::int64_t at_ns) {
    generator_.expires_at(run_start_ + nanoseconds(at_ns));
    generator_.async_wait(
        [self = shared_from_this(), epoch = epoch_](boost::system::error_code ec) {
          if (!ec) self->tick(epoch);
        });
  }

  void tick(std::uint64_t epoch) {
    if (epoch != epoch_ || !running_) return;
    std::int64_t now = now_ns();
    if (kind_ == arrival_kind::closed) {
      fill_closed(now);
      return;
    }
    for (int launched = 0;; ++launched) {
      std::int64_t next = schedule_.next_ns();
      if (!may_start(next)) {
        running_ = false;
        release_timers_if_done();
        return;
      }
      if (next > now) break;
      if (launched == max_burst) {
        net::post(io_, [self = shared_from_this(), epoch] { self->tick(epoch); });
        return;
      }
      // Each heartbeat checker has its own source address; other arrivals take turns.
      std::uint16_t source =
          kind_ == arrival_kind::heartbeat ? schedule_.next_checker() : next_source();
      launch(next, source);
      schedule_.advance();
    }
    arm_generator(schedule_.next_ns());
  }

  /// Closed loop: top up to `concurrency`; each new connection's intended start is now.
  void fill_closed(std::int64_t now) {
    while (running_ && in_flight_ < spec_.concurrency) {
      if (!may_start(now)) {
        running_ = false;
        release_timers_if_done();
        return;
      }
      if (!launch(now, next_source())) {
        // It failed before connecting (EMFILE, say): try again after other handlers ran
        // rather than spinning here.
        net::post(io_, [self = shared_from_this(), epoch = epoch_] { self->tick(epoch); });
        return;
      }
    }
  }

  std::uint16_t next_source() noexcept {
    if (sources_.size() <= 1) return 0;
    auto i = static_cast<std::uint16_t>(round_robin_ % sources_.size());
    ++round_robin_;
    return i;
  }

  std::uint32_t pick_size() {
    auto lo = spec_.request_bytes.min;
    auto hi = spec_.request_bytes.max;
    if (lo >= hi) return lo;
    return lo + static_cast<std::uint32_t>(size_rng_() % (std::uint64_t(hi - lo) + 1));
  }

  // --- sockets --------------------------------------------------------------------------------

  /// Starts one connection; false if it failed before connect() (already counted as other).
  bool launch(std::int64_t intended, std::uint16_t source) {
    ++results_.started;
    std::int64_t started = now_ns();
    results_.max_start_lag = std::max(results_.max_start_lag, nanoseconds(started - intended));
    std::uint32_t size = pick_size();
    unique_fd socket = pool_.take(target_.address().is_v4() ? AF_INET : AF_INET6);
    if (!socket) return fail_start(intended, started, size, source, errno);
    connection_slot& s = slots_.acquire();
    int fd = socket.get();
    s.fd = std::move(socket);
    if (!sources_.empty()) {
      if (int err = bind_source(fd, sources_[source % sources_.size()])) {
        s.fd.reset();
        slots_.release(s);
        return fail_start(intended, started, size, source, err);
      }
    }
    s.intended_ns = intended;
    s.started_ns = started;
    s.connected_ns = -1;
    s.request_size = size;
    s.sent = 0;
    s.response_bytes = 0;
    s.source_index = source;
    s.local_port = 0;
    s.parser.reset();
    s.connected_inline = false;
    s.readable = false;
    s.state = phase::connecting;
    ++in_flight_;
    results_.peak_in_flight = std::max<std::uint64_t>(results_.peak_in_flight, in_flight_);
    // The socket is non-blocking from birth and the I/O calls are plain syscalls; readiness
    // comes from the group's epoll_set, where the socket is registered once (edge-triggered
    // in, out and peer-closed): no FIONBIO ioctl, no EPOLL_CTL_MOD per wait, no DEL at close.
    boost::system::error_code ec = start_connect(fd, target_);
    if (!ec) {
      if (!watch(s)) return false;
      // Carry on from a posted handler, not from here: a closed loop tops itself up when a
      // connection completes, which must not recurse into launch().
      s.connected_inline = true;
      net::post(io_, [self = shared_from_this(), slot = &s, gen = s.generation] {
        if (slot->generation == gen && slot->state == phase::connecting) self->connected(*slot);
      });
      return true;
    }
    if (ec != net::error::in_progress) {
      // Decided before any waiting (EADDRNOTAVAIL when ports run out, ENETUNREACH, a refusal
      // seen by the second connect()): no closed-loop top-up from here, or a persistent error
      // would recurse.
      complete(s, classify_connect_error(ec.value()), ec.value(), false);
      return false;
    }
    if (!watch(s)) return false;
    push(connect_list_, s);
    return true;
  }

  /// Registers the slot's socket with the epoll_set; on failure the connection ends as other.
  bool watch(connection_slot& s) {
    s.registration = events_->add(s.fd.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, &s);
    if (s.registration != 0) return true;
    complete(s, outcome::other, errno, false);
    return false;
  }

  void on_socket_events(connection_slot& s, std::uint32_t events) override {
    constexpr std::uint32_t input = EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP;
    constexpr std::uint32_t output = EPOLLOUT | EPOLLERR | EPOLLHUP;
    switch (s.state) {
    case phase::connecting:
      if (s.connected_inline) break; // the posted handler carries on
      if (events & output) on_connect(s);
      break;
    case phase::sending:
      if (events & input) s.readable = true; // edge-triggered: remember it for awaiting
      if (events & output) send(s);
      break;
    case phase::awaiting:
      if (events & input) on_readable(s);
      break;
    case phase::idle:
      break;
    }
  }

  bool fail_start(std::int64_t intended, std::int64_t started, std::uint32_t size,
                  std::uint16_t source, int err) {
    connection_record r;
    r.intended_start = nanoseconds(intended);
    r.started = nanoseconds(started);
    r.finished = nanoseconds(now_ns());
    r.kind = outcome::other;
    r.error = static_cast<std::uint16_t>(err);
    r.source_index = source;
    r.request_bytes = size;
    account(r);
    return false;
  }

  void on_connect(connection_slot& s) {
    unlink(s);
    if (int err = connect_result(s.fd.get()).value())
      return complete(s, classify_connect_error(err), err);
    connected(s);
  }

  /// The handshake is done: count it, then send the request or wait for the response.
  void connected(connection_slot& s) {
    std::int64_t now = now_ns();
    s.connected_ns = now;
    ++results_.connected;
    results_.connect_latency.record(nanoseconds(now - s.intended_ns));
    if (options_.record_local_port && results_.records.size() < options_.max_records)
      s.local_port = local_port(s.fd.get());
    if (s.request_size == 0 && spec_.response_timeout_ms == 0) {
      // A pure TCP health check: the handshake was the answer.
      return complete(s, outcome::answered, 0);
    }
    push(response_list_, s);
    if (s.request_size > 0) {
      s.state = phase::sending;
      send(s);
    } else {
      s.state = phase::awaiting;
      await_response(s);
    }
  }

  void send(connection_slot& s) {
    io_step step = send_request(s, request_, scratch_);
    if (step.status == io_status::would_block) return; // EPOLLOUT comes when there is room
    if (step.status != io_status::done)
      return complete(s, classify_io_error(step.error), step.error);
    if (spec_.response_timeout_ms == 0) return complete(s, outcome::answered, 0);
    s.state = phase::awaiting;
    await_response(s);
  }

  /// Waits for the response's next bytes: the next input event, or now if one came while the
  /// request was still being sent (an edge-triggered event does not repeat).
  void await_response(connection_slot& s) {
    if (s.readable) on_readable(s);
  }

  void on_readable(connection_slot& s) {
    s.readable = false;
    io_step step = read_response(s, read_buffer_, http_response_);
    switch (step.status) {
    case io_status::done:
      return answered(s);
    case io_status::would_block:
      return; // the next input event goes on
    case io_status::closed_early:
      return complete(s, outcome::closed_early, 0);
    case io_status::failed: // a malformed response too: `other`, with EPROTO
      return complete(s, classify_io_error(step.error), step.error);
    }
  }

  void answered(connection_slot& s) {
    results_.response_latency.record(nanoseconds(now_ns() - s.intended_ns));
    std::uint16_t status = s.parser.status();
    ++results_.status_classes[status >= 100 && status < 600 ? status / 100 : 0];
    complete(s, outcome::answered, 0);
  }

  /// Decides a connection's outcome, closes it (FIN, as nothing unread is left behind), and
  /// tops up a closed loop unless `refill` is false.
  void complete(connection_slot& s, outcome kind, int err, bool refill = true) {
    unlink(s);
    events_->forget(s.registration); // no late event reaches the slot, which will be reused
    s.registration = 0;
    s.fd.reset();
    connection_record r;
    r.intended_start = nanoseconds(s.intended_ns);
    r.started = nanoseconds(s.started_ns);
    r.connected = nanoseconds(s.connected_ns);
    r.finished = nanoseconds(now_ns());
    r.kind = kind;
    r.error = static_cast<std::uint16_t>(err);
    r.local_port = s.local_port;
    r.source_index = s.source_index;
    r.http_status = s.parser.status();
    r.request_bytes = s.request_size;
    r.response_bytes = s.response_bytes;
    --in_flight_;
    slots_.release(s);
    account(r);
    if (kind_ == arrival_kind::closed && running_ && refill) fill_closed(now_ns());
    release_timers_if_done();
  }

  /// Once finished, a deadline timer still armed for a connection that ended long ago would
  /// keep the io_context busy until it fired.
  void release_timers_if_done() {
    if (running_ || in_flight_ != 0) return;
    if (connect_list_.armed) connect_list_.timer.cancel();
    if (response_list_.armed) response_list_.timer.cancel();
  }

  void account(const connection_record& r) {
    ++results_.counts[r.kind];
    if (r.kind == outcome::other) ++results_.other_errors[r.error];
    if (results_.records.size() < options_.max_records)
      results_.records.push_back(r);
    else
      ++results_.records_dropped;
    if (on_finished_) on_finished_(r);
  }

  // --- deadlines ------------------------------------------------------------------------------

  void push(timed_list& t, connection_slot& s) {
    t.list.push(s, clock::now());
    if (!t.armed) arm(t);
  }

  static void unlink(connection_slot& s) { deadline_list::unlink(s); }

  void arm(timed_list& t) {
    // The head may finish before this fires; then it fires early, finds nothing due, re-arms.
    t.armed = true;
    t.timer.expires_at(t.list.head()->deadline);
    t.timer.async_wait(
        [self = shared_from_this(), t = &t](boost::system::error_code) { self->on_deadline(*t); });
  }

  void on_deadline(timed_list& t) {
    t.armed = false;
    if (aborted_) return;
    auto now = clock::now();
    while (auto* due = t.list.pop_due(now))
      complete(static_cast<connection_slot&>(*due), t.on_expiry, 0);
    if (t.list.head() && !t.armed) arm(t);
  }

  net::io_context& io_;
  scenario::client_group_spec spec_;
  std::string where_;
  arrival_kind kind_;
  tcp::endpoint target_;
  std::vector<net::ip::address> sources_;
  clock::time_point run_start_;
  group_options options_;
  request_source request_;
  bool http_response_ = false;
  arrival_schedule schedule_;
  std::mt19937_64 size_rng_;

  net::steady_timer generator_;
  std::shared_ptr<epoll_set> events_; ///< the sockets of connections in flight
  bool running_ = false;
  bool started_once_ = false;
  bool aborted_ = false;
  std::uint64_t epoch_ = 0; ///< invalidates generator handlers from before a stop()
  std::uint64_t round_robin_ = 0;

  connection_slots slots_{*this};
  std::size_t in_flight_ = 0;
  /// Sockets of the client namespace; the batch adapts to the rate so that a slow group holds
  /// few spare descriptors.
  lab::socket_pool pool_;
  timed_list connect_list_;
  timed_list response_list_;

  client_results results_;
  std::function<void(const connection_record&)> on_finished_;
  std::array<char, 16384> read_buffer_{};
  char scratch_[request_source::scratch_bytes]{};
};

} // namespace detail

client_group::client_group(net::io_context& io, const lab::netns& ns,
                           const scenario::client_group_spec& spec, tcp::endpoint target,
                           std::vector<std::string> source_addresses, std::uint64_t seed,
                           clock::time_point run_start, group_options options)
    : state_(std::make_shared<detail::group_state>(io, ns, spec, target, source_addresses, seed,
                                                   run_start, options)) {}

client_group::client_group(client_group&&) noexcept = default;
client_group& client_group::operator=(client_group&& other) noexcept {
  if (this != &other) {
    if (state_) state_->abort();
    state_ = std::move(other.state_);
  }
  return *this;
}

client_group::~client_group() {
  if (state_) state_->abort();
}

void client_group::start() {
  state_->start();
}
void client_group::stop() {
  state_->stop();
}
void client_group::abort() {
  state_->abort();
}
bool client_group::idle() const noexcept {
  return state_->idle();
}
bool client_group::finished() const noexcept {
  return state_->finished();
}
std::size_t client_group::in_flight() const noexcept {
  return state_->in_flight();
}
const client_results& client_group::results() const noexcept {
  return state_->results();
}
const scenario::client_group_spec& client_group::spec() const noexcept {
  return state_->spec();
}
void client_group::on_finished(std::function<void(const connection_record&)> callback) {
  state_->on_finished(std::move(callback));
}

} // namespace backlog_lab::clients
