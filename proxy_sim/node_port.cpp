#include "proxy_sim/node_port.hpp"

#include "harness/core/error.hpp"
#include "harness/lab/sysctl.hpp"

namespace backlog_lab::proxy_sim {

int go_listen_backlog(const lab::netns& ns) {
  long n = 0;
  try {
    n = std::stol(lab::read_sysctl(ns, "net.core.somaxconn"));
  } catch (const std::exception&) {
    n = 0;
  }
  if (n <= 0) return 128;
  return n > 65535 ? 65535 : static_cast<int>(n);
}

int node_port_backlog(const scenario::proxy_spec& spec, const lab::netns& ns) {
  return spec.backlog >= 0 ? spec.backlog : go_listen_backlog(ns);
}

void listen_node_port(tcp::acceptor& acceptor, const lab::netns& ns, std::uint16_t port,
                      int backlog, const std::string& what, node_port_socket shape) {
  try {
    lab::netns_scope in(ns); // the socket belongs to `ns` for good
    if (shape != node_port_socket::dual_stack) {
      acceptor.open(tcp::v4());
      acceptor.set_option(net::socket_base::reuse_address(true));
      acceptor.bind(tcp::endpoint(shape == node_port_socket::loopback
                                      ? net::ip::address_v4::loopback()
                                      : net::ip::address_v4::any(),
                                  port));
    } else {
      acceptor.open(tcp::v6());
      acceptor.set_option(net::ip::v6_only(false));
      acceptor.set_option(net::socket_base::reuse_address(true));
      acceptor.bind(tcp::endpoint(net::ip::address_v6::any(), port));
    }
    acceptor.listen(backlog);
  } catch (const boost::system::system_error& e) {
    throw lab_error(what + ": " + e.what());
  }
}

} // namespace backlog_lab::proxy_sim
