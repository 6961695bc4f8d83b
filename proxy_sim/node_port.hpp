#pragma once
// How kube-proxy opened a NodePort socket, shared by both proxy modes: Go's net.Listen.
#include <cstdint>
#include <string>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/scenario/model.hpp"

namespace backlog_lab::proxy_sim {

/// Go's net.Listen backlog (src/net/sock_linux.go maxListenerBacklog): net.core.somaxconn of
/// the namespace, 128 (syscall.SOMAXCONN) if unreadable or 0, truncated to 16 bits as the Go
/// releases of kube-proxy 1.5-1.9 did (Go issue 5030).
int go_listen_backlog(const lab::netns& ns);

/// The listen() backlog of a NodePort socket: spec.backlog, or Go's when it is -1.
int node_port_backlog(const scenario::proxy_spec& spec, const lab::netns& ns);

/// Opens `acceptor` in `ns` as Go's net.Listen("tcp", ":port") does: AF_INET6 with IPV6_V6ONLY
/// off (dual stack; IPv4 peers appear as ::ffff:a.b.c.d), SO_REUSEADDR, listen(backlog).
/// Throws lab_error starting with `what` if the port cannot be had.
void listen_node_port(tcp::acceptor& acceptor, const lab::netns& ns, std::uint16_t port,
                      int backlog, const std::string& what);

} // namespace backlog_lab::proxy_sim
