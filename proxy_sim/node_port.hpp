#pragma once
// How kube-proxy opened a NodePort socket, shared by both proxy modes: Go's net.Listen.
#include <cstdint>
#include <string>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/scenario/model.hpp"

namespace backlog_lab::proxy_sim {

/// How kube-proxy opened a NodePort: LocalPort without a family (Go's network "tcp", one
/// AF_INET6 socket that takes IPv4 too), with LocalPort.IPFamily "4" (network "tcp4", AF_INET),
/// or 1.37's localhost NodePort proxy (AF_INET on 127.0.0.1 only).
enum class node_port_socket : std::uint8_t { dual_stack, ipv4, loopback };

/// Go's net.Listen backlog (src/net/sock_linux.go maxListenerBacklog): net.core.somaxconn of
/// the namespace, 128 (syscall.SOMAXCONN) if unreadable or 0, truncated to 16 bits as the Go
/// releases of kube-proxy 1.5-1.9 did (Go issue 5030).
int go_listen_backlog(const lab::netns& ns);

/// The listen() backlog of a NodePort socket: spec.backlog, or Go's when it is -1.
int node_port_backlog(const scenario::proxy_spec& spec, const lab::netns& ns);

/// Opens `acceptor` in `ns` as Go's net.Listen does: for "tcp" (`dual_stack`) AF_INET6 with
/// IPV6_V6ONLY off (IPv4 peers appear as ::ffff:a.b.c.d), for "tcp4" (`ipv4`) AF_INET on
/// 0.0.0.0, for `loopback` AF_INET on 127.0.0.1; SO_REUSEADDR, listen(backlog). Throws lab_error
/// starting with `what` if the port cannot be had.
void listen_node_port(tcp::acceptor& acceptor, const lab::netns& ns, std::uint16_t port,
                      int backlog, const std::string& what,
                      node_port_socket shape = node_port_socket::dual_stack);

} // namespace backlog_lab::proxy_sim
