#include "tests/support/nodeport_lab.hpp"

#include <poll.h>

#include <string>

#include "harness/lab/sysctl.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::testing {

bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

namespace {

lab::topology build() {
  lab::nodeport_plan plan;
  plan.client_addresses = 1;
  plan.pods = 1;
  plan.sysctls_by_role["node"]["net.core.somaxconn"] = "128";
  // Hang guard: a dropped SYN fails connect() within about 3 s.
  plan.sysctls_by_role["clients"]["net.ipv4.tcp_syn_retries"] = "1";
  lab::topology t = lab::topology::build_nodeport(plan);
  if (lab::sysctl_exists(t.clients(), "net.ipv4.tcp_syn_linear_timeouts"))
    lab::write_sysctl(t.clients(), "net.ipv4.tcp_syn_linear_timeouts", "0");
  return t;
}

} // namespace

nodeport_lab::nodeport_lab()
    : topology(build()), client(topology.clients()), node(topology.node()), pod(topology.pod(0)) {}

void nodeport_lab::add_pod_address(const char* address) {
  run_ok(pod,
         {"ip", "addr", "add", std::string(address) + "/24", "dev", lab::topology::pod_link(0)});
}

tcp::acceptor nodeport_lab::backend(uint16_t port, const char* address) {
  tcp::acceptor a(io);
  lab::netns_scope in(pod);
  a.open(tcp::v4());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(tcp::endpoint(net::ip::make_address_v4(address), port));
  a.listen(16);
  return a;
}

boost::system::error_code nodeport_lab::connect(tcp::socket& s, uint16_t port) {
  {
    lab::netns_scope in(client);
    s.open(tcp::v4());
  }
  s.non_blocking(true);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(net::ip::make_address_v4("198.51.100.1"), port), ec);
  s.non_blocking(false);
  return ec;
}

void nodeport_lab::run_io(std::chrono::milliseconds limit) {
  io.restart();
  io.run_for(limit);
}

::testing::AssertionResult served_by_backend(nodeport_lab& lab, tcp::acceptor& backend) {
  using namespace std::chrono_literals;
  tcp::socket client(lab.io);
  if (auto ec = lab.connect(client)) return ::testing::AssertionFailure() << "connect: " << ec;
  net::write(client, net::buffer(std::string("ping")));
  if (!wait_readable(backend.native_handle(), 2s))
    return ::testing::AssertionFailure() << "nothing reached the pod";
  tcp::socket conn = backend.accept();
  // Marked for masquerade, then masqueraded: the pod sees the node's address.
  if (conn.remote_endpoint().address().to_string() != "203.0.113.1")
    return ::testing::AssertionFailure() << "pod saw peer " << conn.remote_endpoint();
  std::string got(4, '\0');
  net::read(conn, net::buffer(got));
  net::write(conn, net::buffer(std::string("pong")));
  if (!wait_readable(client.native_handle(), 2s))
    return ::testing::AssertionFailure() << "no answer";
  std::string answer(4, '\0');
  net::read(client, net::buffer(answer));
  if (got != "ping" || answer != "pong")
    return ::testing::AssertionFailure() << "got '" << got << "', answer '" << answer << "'";
  return ::testing::AssertionSuccess();
}

std::pair<int, int> spread_over(nodeport_lab& lab, tcp::acceptor& first, tcp::acceptor& second,
                                int connections) {
  std::pair<int, int> hits{0, 0};
  for (int i = 0; i < connections; ++i) {
    tcp::socket client(lab.io);
    if (lab.connect(client)) continue;
    pollfd p[2] = {{first.native_handle(), POLLIN, 0}, {second.native_handle(), POLLIN, 0}};
    if (::poll(p, 2, 2000) < 1) continue;
    tcp::acceptor& ready = (p[0].revents & POLLIN) ? first : second;
    tcp::socket accepted = ready.accept();
    ++((&ready == &first) ? hits.first : hits.second);
  }
  return hits;
}

} // namespace backlog_lab::testing
