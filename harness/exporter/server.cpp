#include "harness/exporter/server.hpp"

// clang-format off
#include "harness/core/asio.hpp" // before Beast: it includes Asio itself
// clang-format on
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <iostream>
#include <list>

#include "harness/core/error.hpp"
#include "harness/exporter/exposition.hpp"

namespace backlog_lab::exporter {
namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;
using clock = std::chrono::steady_clock;

namespace {

struct connection {
  explicit connection(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  bool waiting = true; ///< waiting for a request (may be evicted), not serving one
  bool listed = true;  ///< still counted in impl::connections
  clock::time_point since = clock::now();
  std::list<std::shared_ptr<connection>>::iterator self;
};

} // namespace

struct metrics_server::impl : std::enable_shared_from_this<impl> {
  impl(net::io_context& io, net::thread_pool& pool, collect_fn collect, server_limits limits)
      : io(io), pool(pool), acceptor(io), collect(std::move(collect)), limits(limits) {}

  net::io_context& io;
  net::thread_pool& pool;
  tcp::acceptor acceptor;
  collect_fn collect;
  server_limits limits;
  server_stats stats;
  bool stopped = false;
  std::list<std::shared_ptr<connection>> connections;

  // Coalesced collections (touched on the io thread only).
  bool collecting = false;
  std::uint64_t generation = 0;
  std::shared_ptr<const std::string> latest;
  std::vector<net::steady_timer*> waiters;

  net::awaitable<void> accept_loop();
  net::awaitable<void> session(std::shared_ptr<connection> c);
  net::awaitable<std::shared_ptr<const std::string>> scrape();
  void start_collection();
  bool make_room();
  void forget(connection& c);
  static void close(connection& c);
};

void metrics_server::impl::close(connection& c) {
  error_code ignored;
  c.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  c.stream.socket().close(ignored);
}

void metrics_server::impl::forget(connection& c) {
  if (!c.listed) return;
  c.listed = false;
  connections.erase(c.self);
}

bool metrics_server::impl::make_room() {
  // The connection waiting longest for a request goes: a slow or idle client cannot hold a slot
  // that a scraper needs. One that is being served stays.
  connection* oldest = nullptr;
  for (const auto& c : connections)
    if (c->waiting && (oldest == nullptr || c->since < oldest->since)) oldest = c.get();
  if (oldest == nullptr) return false;
  ++stats.closed_evicted;
  close(*oldest);
  forget(*oldest);
  return true;
}

net::awaitable<void> metrics_server::impl::accept_loop() {
  auto self = shared_from_this();
  net::steady_timer pause(io);
  while (!stopped) {
    error_code ec;
    tcp::socket s = co_await acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
    if (stopped) break;
    if (ec) {
      // Out of file descriptors or memory: wait instead of spinning on the same error.
      pause.expires_after(std::chrono::milliseconds(100));
      co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
      continue;
    }
    if (connections.size() >= limits.max_connections && !make_room()) {
      ++stats.rejected_at_limit;
      s.close(ec);
      continue;
    }
    auto c = std::make_shared<connection>(std::move(s));
    connections.push_back(c);
    c->self = std::prev(connections.end());
    net::co_spawn(io, session(std::move(c)), net::detached);
  }
}

void metrics_server::impl::start_collection() {
  collecting = true;
  std::weak_ptr<impl> weak = weak_from_this();
  net::post(pool, [weak] {
    auto self = weak.lock();
    if (!self) return;
    std::shared_ptr<const std::string> text;
    try {
      text = std::make_shared<const std::string>(self->collect());
    } catch (const std::exception& e) {
      std::cerr << "backlog-lab export: collection failed: " << e.what() << '\n';
    }
    net::post(self->io, [self, text = std::move(text)]() mutable {
      self->collecting = false;
      self->latest = std::move(text);
      ++self->generation;
      ++self->stats.collections;
      for (auto* t : self->waiters)
        t->cancel();
    });
  });
}

net::awaitable<std::shared_ptr<const std::string>> metrics_server::impl::scrape() {
  auto self = shared_from_this();
  const std::uint64_t asked_at = generation;
  if (!collecting) start_collection();
  net::steady_timer wait(io, limits.scrape_timeout);
  waiters.push_back(&wait);
  error_code ec;
  co_await wait.async_wait(net::redirect_error(net::use_awaitable, ec));
  std::erase(waiters, &wait);
  if (generation == asked_at) co_return nullptr; // timed out: the collection is still running
  co_return latest;
}

net::awaitable<void> metrics_server::impl::session(std::shared_ptr<connection> c) {
  auto self = shared_from_this();
  beast::flat_buffer buffer(limits.header_limit + 1024);
  for (std::size_t served = 0; served < limits.max_requests_per_connection && c->listed; ++served) {
    c->waiting = true;
    c->since = clock::now();
    http::request_parser<http::empty_body> parser;
    parser.header_limit(limits.header_limit);
    error_code ec;
    c->stream.expires_after(limits.request_timeout);
    co_await http::async_read(c->stream, buffer, parser,
                              net::redirect_error(net::use_awaitable, ec));
    if (!c->listed) break; // evicted while waiting
    c->waiting = false;

    http::response<http::string_body> res;
    bool keep_alive = false;
    std::shared_ptr<const std::string> metrics;
    if (ec == beast::error::timeout) {
      ++stats.closed_timeout;
      break;
    } else if (ec == http::error::end_of_stream || ec == net::error::eof ||
               ec == net::error::operation_aborted || ec == net::error::connection_reset) {
      break;
    } else if (ec) {
      // A malformed request: say what, then close (the stream's framing is lost).
      ++stats.requests_bad;
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        res.result(http::status::request_header_fields_too_large);
      } else if (ec == http::error::unexpected_body || ec == http::error::body_limit) {
        res.result(http::status::payload_too_large);
      } else {
        res.result(http::status::bad_request);
      }
      res.body() = ec.message() + "\n";
    } else {
      const auto& req = parser.get();
      keep_alive = req.keep_alive();
      res.version(req.version());
      std::string_view target(req.target().data(), req.target().size());
      target = target.substr(0, target.find('?'));
      const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
      if (target != "/metrics" && target != "/" && target != "/healthz") {
        ++stats.requests_bad;
        res.result(http::status::not_found);
        res.body() = "not found; the metrics are at /metrics\n";
      } else if (!get) {
        ++stats.requests_bad;
        res.result(http::status::method_not_allowed);
        res.set(http::field::allow, "GET, HEAD");
        res.body() = "only GET and HEAD\n";
      } else if (target == "/metrics") {
        metrics = co_await scrape();
        if (!c->listed) break;
        if (metrics) {
          ++stats.requests_ok;
          res.result(http::status::ok);
          res.set(http::field::content_type,
                  beast::string_view(text_content_type.data(), text_content_type.size()));
          res.body().reserve(metrics->size() + 2048);
          res.body() = *metrics;
          res.body() += render_server_stats(stats, connections.size());
        } else {
          ++stats.scrape_timeouts;
          res.result(http::status::service_unavailable);
          res.body() = "no collection finished in time (or it failed; see the exporter's log)\n";
        }
      } else {
        ++stats.requests_ok;
        res.result(http::status::ok);
        res.body() = target == "/healthz" ? "ok\n" : "backlog-lab exporter: metrics at /metrics\n";
      }
      if (req.method() == http::verb::head) {
        const std::size_t length = res.body().size();
        res.body().clear();
        res.content_length(length);
      }
    }
    if (!res.has_content_length()) res.prepare_payload();
    if (res.find(http::field::content_type) == res.end())
      res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::server, "backlog-lab");
    res.keep_alive(keep_alive);
    c->stream.expires_after(limits.write_timeout);
    co_await http::async_write(c->stream, res, net::redirect_error(net::use_awaitable, ec));
    if (ec == beast::error::timeout) ++stats.closed_timeout;
    if (ec || !keep_alive) break;
  }
  close(*c);
  forget(*c);
}

metrics_server::metrics_server(net::io_context& io, const std::optional<tcp::endpoint>& where,
                               collect_fn collect, server_limits limits)
    : pool_(std::make_unique<net::thread_pool>(1)),
      impl_(std::make_shared<impl>(io, *pool_, std::move(collect), limits)) {
  if (!where) return;
  const tcp::endpoint& at = *where;
  error_code ec;
  auto& a = impl_->acceptor;
  a.open(at.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(at, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw lab_error("cannot listen on " + at.address().to_string() + ":" +
                    std::to_string(at.port()) + ": " + ec.message());
  net::co_spawn(io, impl_->accept_loop(), net::detached);
}

metrics_server::~metrics_server() {
  stop();
  pool_->join();
}

tcp::endpoint metrics_server::local_endpoint() const {
  return impl_->acceptor.local_endpoint();
}

void metrics_server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  error_code ignored;
  impl_->acceptor.close(ignored);
  for (const auto& c : impl_->connections) {
    c->listed = false;
    impl::close(*c);
  }
  impl_->connections.clear();
  for (auto* t : impl_->waiters)
    t->cancel();
}

const server_stats& metrics_server::stats() const noexcept {
  return impl_->stats;
}

std::size_t metrics_server::open_connections() const noexcept {
  return impl_->connections.size();
}

net::awaitable<std::shared_ptr<const std::string>> metrics_server::scrape() {
  return impl_->scrape();
}

std::string render_server_stats(const server_stats& s, std::size_t open_connections) {
  exposition x;
  x.family("backlog_lab_exporter_http_requests_total", "counter",
           "HTTP requests answered, by outcome: ok (200), bad (400, 404, 405, 413, 431: a "
           "malformed or unsupported request), unavailable (503: no collection in time).");
  x.sample("backlog_lab_exporter_http_requests_total", {label{"outcome", "ok"}}, s.requests_ok);
  x.sample("backlog_lab_exporter_http_requests_total", {label{"outcome", "bad"}}, s.requests_bad);
  x.sample("backlog_lab_exporter_http_requests_total", {label{"outcome", "unavailable"}},
           s.scrape_timeouts);
  x.family("backlog_lab_exporter_http_connections_closed_total", "counter",
           "HTTP connections the exporter closed or refused to stay within its limits, by "
           "reason: timeout (request or response too slow), evicted (the oldest idle one, to make "
           "room), rejected (at the connection limit with nothing to evict).");
  x.sample("backlog_lab_exporter_http_connections_closed_total", {label{"reason", "timeout"}},
           s.closed_timeout);
  x.sample("backlog_lab_exporter_http_connections_closed_total", {label{"reason", "evicted"}},
           s.closed_evicted);
  x.sample("backlog_lab_exporter_http_connections_closed_total", {label{"reason", "rejected"}},
           s.rejected_at_limit);
  x.family("backlog_lab_exporter_collections_total", "counter",
           "Collections run for HTTP scrapes; scrapes that arrive while one runs share it, so "
           "this grows slower than the requests under many scrapers.");
  x.sample("backlog_lab_exporter_collections_total", {}, s.collections);
  x.family("backlog_lab_exporter_http_connections", "gauge", "HTTP connections open now.");
  x.sample("backlog_lab_exporter_http_connections", {}, std::uint64_t{open_connections});
  return x.take();
}

} // namespace backlog_lab::exporter
