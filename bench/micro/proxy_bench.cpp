// The userspace proxy's copy path: a client writes N bytes, proxy_sim copies them to an echo
// server and the echo back, the client reads N bytes. Client, proxy and echo share one
// single-threaded io_context over loopback, so the time is the whole round trip's cost. The
// echo is a minimal one with TCP_NODELAY (backends' echo kind leaves Nagle on, which stalls
// the last partial segment of a 64 KiB echo behind a delayed ACK and would hide the proxy).
#include <array>
#include <benchmark/benchmark.h>
#include <chrono>
#include <optional>
#include <vector>

#include "harness/lab/netns.hpp"
#include "proxy_sim/userspace/userspace_proxier.hpp"

namespace backlog_lab::bench {
namespace {

net::awaitable<void> echo_session(tcp::socket socket) {
  std::array<char, 16384> buffer;
  boost::system::error_code ec;
  for (;;) {
    std::size_t n = co_await socket.async_read_some(net::buffer(buffer),
                                                    net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
    co_await net::async_write(socket, net::buffer(buffer.data(), n),
                              net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
  }
}

net::awaitable<void> echo_server(tcp::acceptor& acceptor) {
  boost::system::error_code ec;
  for (;;) {
    tcp::socket s = co_await acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
    s.set_option(tcp::no_delay(true), ec);
    net::co_spawn(acceptor.get_executor(), echo_session(std::move(s)), net::detached);
  }
}

void BM_proxy_copy_round_trip(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::optional<lab::netns> ns;
  try {
    ns = lab::netns::create("bench-proxy");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  net::io_context io{1};
  tcp::acceptor echo(io);
  {
    lab::netns_scope in(*ns);
    echo.open(tcp::v4());
    echo.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    echo.listen();
  }
  net::co_spawn(io, echo_server(echo), net::detached);

  scenario::proxy_spec pspec;
  pspec.mode = scenario::proxy_mode::userspace;
  proxy_sim::service_endpoints service;
  service.service = "bench/echo:tcp";
  service.node_port = 0;
  service.endpoints = {echo.local_endpoint()};
  proxy_sim::userspace_proxier proxy(io, *ns, pspec, {service}, 1);
  proxy.start();

  tcp::socket client(io);
  {
    lab::netns_scope in(*ns);
    client.connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), proxy.node_port(service.service)));
  }
  client.set_option(tcp::no_delay(true));
  // The proxy accepts and dials on the io_context: wait until its session exists.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (proxy.detail().sessions_started == 0 && std::chrono::steady_clock::now() < deadline)
    io.run_for(std::chrono::milliseconds(1));
  if (proxy.detail().sessions_started == 0) {
    state.SkipWithError("the proxy did not open a session");
    return;
  }

  std::vector<char> out(size, 'x'), in(size);
  for (auto _ : state) {
    bool done = false;
    boost::system::error_code failure;
    net::async_write(client, net::buffer(out), [&](boost::system::error_code ec, std::size_t) {
      if (ec) failure = ec;
    });
    net::async_read(client, net::buffer(in), [&](boost::system::error_code ec, std::size_t) {
      if (ec) failure = ec;
      done = true;
    });
    while (!done)
      io.run_one();
    if (failure) {
      state.SkipWithError(failure.message().c_str());
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size * 2));
  client.close();
  proxy.stop();
  echo.close();
  io.run_for(std::chrono::milliseconds(10));
}
BENCHMARK(BM_proxy_copy_round_trip)->Arg(64)->Arg(4096)->Arg(65536)->Unit(benchmark::kMicrosecond);

} // namespace
} // namespace backlog_lab::bench
