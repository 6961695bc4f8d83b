#include "harness/demo/accept_queue_demo.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <sstream>
#include <vector>

#include "harness/core/asio.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/netns.hpp"
#include "harness/lab/sysctl.hpp"

namespace backlog_lab::demo {
namespace {

using observer::census_reader;
using observer::counter_reader;
using observer::counter_snapshot;
using observer::delta;
using observer::ip_address;
using observer::tcp_state;

std::int64_t value(const counter_map& m, std::string_view name) {
  auto it = m.find(name);
  return it == m.end() ? 0 : it->second;
}

enum class client_state { connecting, sending, done };

} // namespace

std::string make_demo_request(std::uint32_t bytes) {
  const std::string head = "GET /demo HTTP/1.1\r\nHost: backlog-lab\r\nX-Pad: ";
  const std::string tail = "\r\n\r\n";
  if (bytes < head.size() + tail.size()) return std::string(bytes, 'x');
  return head + std::string(bytes - head.size() - tail.size(), 'x') + tail;
}

demo_result run_accept_queue_demo(const demo_options& options) {
  const auto started = std::chrono::steady_clock::now();
  demo_result r;
  r.options = options;
  utsname u{};
  if (::uname(&u) == 0) r.kernel = u.release;

  lab::netns ns = lab::netns::create("observe-demo");
  r.namespace_inode = ns.inode();
  // Short client timers keep the run quick; the listener side uses the defaults that matter.
  lab::apply_sysctls(ns, {{"net.core.somaxconn", std::to_string(options.somaxconn)},
                          {"net.ipv4.tcp_syn_retries", "2"},
                          {"net.ipv4.tcp_fin_timeout", "5"}});

  net::io_context io{1};
  tcp::acceptor acceptor(io);
  std::vector<tcp::socket> clients;
  clients.reserve(options.connections);
  {
    lab::netns_scope in(ns);
    acceptor.open(tcp::v4());
    acceptor.bind(tcp::endpoint(net::ip::address_v4::loopback(), 0));
    acceptor.listen(options.backlog); // and never accept()
    for (std::uint32_t i = 0; i < options.connections; ++i) {
      clients.emplace_back(io);
      clients.back().open(tcp::v4());
    }
  }
  const tcp::endpoint target = acceptor.local_endpoint();
  r.listen_endpoint.address = ip_address::v4(127, 0, 0, 1);
  r.listen_endpoint.port = target.port();

  counter_reader counters(&ns);
  census_reader reader(&ns);
  const counter_snapshot before = counters.read();

  const std::string request = make_demo_request(options.request_bytes);
  std::vector<client_state> state(clients.size(), client_state::connecting);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].async_connect(target, [&, i](const boost::system::error_code& ec) {
      if (ec) return; // aborted at the end of the window, or refused
      ++r.connected;
      state[i] = client_state::sending;
      net::async_write(clients[i], net::buffer(request),
                       [&, i](const boost::system::error_code& wec, std::size_t n) {
                         if (!wec && n == request.size()) ++r.requests_sent;
                         boost::system::error_code ignored;
                         clients[i].close(ignored); // FIN: nothing unread on our side
                         state[i] = client_state::done;
                       });
    });
  }
  net::steady_timer window(io);
  window.expires_after(options.connect_window);
  window.async_wait([&](const boost::system::error_code&) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      if (state[i] != client_state::connecting) continue;
      ++r.gave_up;
      boost::system::error_code ignored;
      clients[i].close(ignored); // a SYN-SENT socket just goes away
      state[i] = client_state::done;
    }
  });
  // A stop (SIGINT/SIGTERM in the CLI) ends the window at once, so the caller can exit 130.
  net::steady_timer poll(io);
  std::function<void()> watch_stop = [&] {
    poll.expires_after(std::chrono::milliseconds(20));
    poll.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if (options.stop && options.stop->load()) {
        window.cancel();
        return;
      }
      if (std::any_of(state.begin(), state.end(),
                      [](client_state c) { return c != client_state::done; }))
        watch_stop();
    });
  };
  if (options.stop) watch_stop();
  io.run_for(options.connect_window + std::chrono::seconds(3)); // hang guard

  reader.read(r.final_census);
  r.counters = delta(before, counters.read());
  for (const auto& l : r.final_census.listeners)
    if (l.local == r.listen_endpoint) r.listener = l;

  for (auto& c : clients) {
    boost::system::error_code ignored;
    c.close(ignored);
  }
  acceptor.close();
  r.elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return r; // `ns` closes here: the namespace and every socket left in it are gone
}

std::vector<demo_check> check_demo(const demo_result& r) {
  const auto& l = r.listener;
  std::vector<demo_check> out;
  auto add = [&out](std::string what, std::string measured, bool ok) {
    out.push_back({std::move(what), std::move(measured), ok});
  };
  const std::uint32_t capped = std::min<std::uint32_t>(
      static_cast<std::uint32_t>(std::max(r.options.backlog, 0)), r.options.somaxconn);
  add("backlog (Send-Q) == min(listen backlog, somaxconn)",
      std::to_string(l.backlog) + " == " + std::to_string(capped), l.backlog == capped);
  add("accept_queue (Recv-Q) == backlog + 1",
      std::to_string(l.accept_queue) + " == " + std::to_string(l.backlog) + " + 1",
      l.accept_queue == l.backlog + 1);
  add("un-accepted CLOSE-WAIT children (inode 0) == accept_queue",
      std::to_string(l.unaccepted_close_wait) + " == " + std::to_string(l.accept_queue),
      l.unaccepted_close_wait == l.accept_queue && l.unaccepted_close_wait > 0);
  add("no other children (owned, ESTAB, requests, orphans)",
      std::to_string(l.children.total() - l.unaccepted_close_wait) + " == 0",
      l.children.total() == l.unaccepted_close_wait);
  const std::uint32_t want = r.options.request_bytes + 1;
  bool all_fin = !l.queued.empty();
  std::string groups;
  for (const auto& q : l.queued) {
    all_fin = all_fin && q.state == tcp_state::close_wait && q.recv_q == want;
    groups += (groups.empty() ? "" : ", ") + std::string(state_name(q.state)) + " Recv-Q " +
              std::to_string(q.recv_q) + " x" + std::to_string(q.count);
  }
  add("every child's Recv-Q == request bytes + 1 (" + std::to_string(want) + ")",
      groups.empty() ? "none" : groups, all_fin);
  const std::int64_t overflows = value(r.counters, "TcpExtListenOverflows");
  const std::int64_t drops = value(r.counters, "TcpExtListenDrops");
  add("TcpExtListenOverflows == TcpExtListenDrops > 0",
      std::to_string(overflows) + " == " + std::to_string(drops),
      overflows == drops && overflows > 0);
  return out;
}

std::string explain(const demo_result& r) {
  const auto& l = r.listener;
  const std::int64_t overflows = value(r.counters, "TcpExtListenOverflows");
  const std::int64_t drops = value(r.counters, "TcpExtListenDrops");
  const std::int64_t retrans = value(r.counters, "TcpExtTCPSynRetrans");
  std::uint32_t fin_recv_q = 0;
  for (const auto& q : l.queued)
    if (q.state == tcp_state::close_wait && q.count > 0) fin_recv_q = q.recv_q;
  std::ostringstream o;
  o << "Why: listen(" << r.options.backlog
    << ") in a namespace with net.core.somaxconn=" << r.options.somaxconn
    << " gives the socket a backlog of " << l.backlog
    << " (a LISTEN socket's Send-Q). The kernel calls the accept queue full only when it holds "
       "more than the backlog (sk_acceptq_is_full() compares with >), so "
    << l.accept_queue << " connections completed the handshake and wait in it (Recv-Q "
    << l.accept_queue
    << " = backlog + 1). Nobody calls accept(), so these sockets have no file "
       "and no owner yet: sock_diag reports inode 0 for all "
    << l.unaccepted() << " of them. Each connected client sent its " << r.options.request_bytes
    << "-byte request and closed; its FIN takes one sequence number, so the child shows Recv-Q "
    << fin_recv_q << " (" << r.options.request_bytes
    << " + 1) and sits in CLOSE-WAIT until someone accepts it or the listener closes: "
    << l.unaccepted_close_wait
    << " CLOSE-WAIT children, never more than backlog + 1. Every "
       "SYN that reached the full queue was dropped without a reply and counted in "
       "TcpExtListenOverflows ("
    << overflows << ") and TcpExtListenDrops (" << drops << "); the " << r.gave_up
    << " clients left out kept retransmitting their SYN (TcpExtTCPSynRetrans " << retrans
    << ") until the demo gave up on them after " << r.options.connect_window.count() << " ms.";
  return o.str();
}

} // namespace backlog_lab::demo
