#pragma once
// Links, addresses, routes and neighbours of lab namespaces, through rtnetlink (libmnl), never by
// running `ip`: one syscall per change, and the kernel's own error text on failure.
#include <chrono>
#include <cstdint>
#include <string>

#include "harness/lab/netns.hpp"

struct mnl_socket;
struct nlmsghdr;

namespace backlog_lab::lab {

/// A link's state as RTM_GETLINK reports it.
struct link_state {
  unsigned index = 0;       ///< ifindex in its namespace
  bool admin_up = false;    ///< IFF_UP
  bool carrier = false;     ///< IFF_LOWER_UP
  bool operational = false; ///< IFLA_OPERSTATE is IF_OPER_UP
};

/// A NETLINK_ROUTE socket opened inside one namespace: every request sent on it acts there, from
/// whatever namespace the calling thread is in later. Keep one per namespace while building a lab.
/// Errors are lab_error "<operation> in namespace '<ns>': <strerror> (errno N)[; kernel:
/// <extack>]".
class rtnl_socket {
public:
  /// Opens the socket inside `ns` (the calling thread visits `ns` for the open only).
  explicit rtnl_socket(const netns& ns);
  rtnl_socket(rtnl_socket&& other) noexcept;
  rtnl_socket& operator=(rtnl_socket&& other) noexcept;
  rtnl_socket(const rtnl_socket&) = delete;
  rtnl_socket& operator=(const rtnl_socket&) = delete;
  ~rtnl_socket();

  /// Creates a veth pair: `name` in this namespace, `peer_name` directly in `peer_ns` (so no end
  /// ever exists anywhere else). Empty MACs let the kernel pick random ones. One queue each way,
  /// asked for explicitly: the kernel's default (one per CPU, then shrunk) costs an RCU grace
  /// period per veth (~2.5 ms measured on 6.18, against ~0.3 ms).
  void create_veth(const std::string& name, const netns& peer_ns, const std::string& peer_name,
                   const std::string& mac = {}, const std::string& peer_mac = {});
  /// Creates a bridge (STP off, so ports forward as soon as they are up).
  void create_bridge(const std::string& name);
  /// Makes `link` a port of `bridge`.
  void set_master(const std::string& link, const std::string& bridge);
  /// Sets `link` administratively up or down.
  void set_link_up(const std::string& link, bool up = true);
  /// Adds an IPv4 address given as CIDR ("198.51.100.1/24"; no prefix means /32) to `link`.
  void add_address(const std::string& link, const std::string& cidr);
  /// Removes an IPv4 address given as CIDR from `link`.
  void delete_address(const std::string& link, const std::string& cidr);
  /// Adds (or with `replace`, replaces) an IPv4 route to `destination` (CIDR or "default") via
  /// `gateway`.
  void add_route(const std::string& destination, const std::string& gateway, bool replace = false);
  /// Adds a `local` route for `destination` (CIDR) on `link` in the local table, as `ip route
  /// add local CIDR dev LINK`: every address in it is this namespace's own (AnyIP), so a
  /// listener on 0.0.0.0 accepts connections to any of them.
  void add_local_route(const std::string& destination, const std::string& link);
  /// Pins the neighbour entry of `address` on `link` to `mac` (NUD_PERMANENT): no ARP is sent for
  /// it any more, so packets to it go out even when nobody answers there.
  void pin_neighbour(const std::string& link, const std::string& address, const std::string& mac);
  /// Deletes the neighbour entry of `address` on `link` (ARP resolves it afresh).
  void delete_neighbour(const std::string& link, const std::string& address);
  /// The index of `link` in this namespace; throws lab_error if there is no such link.
  unsigned link_index(const std::string& link);
  /// The state of `link`; throws lab_error if there is no such link.
  link_state get_link(const std::string& link);
  /// Waits until `link` is operationally up. Carrier changes are applied by the kernel's
  /// asynchronous link-watch work (the device's queue, the bridge port's state); until then
  /// packets, ARP included, are dropped and a connect() pays a 1 s retransmission. Asking for
  /// the link settles its pending event on 6.18, so this normally returns at once. Throws
  /// lab_error after `limit`.
  void wait_operational(const std::string& link,
                        std::chrono::milliseconds limit = std::chrono::seconds(3));

private:
  // Sends the message built in buf_ and waits for its ack; `what` names the operation.
  void execute(const std::string& what);
  nlmsghdr* start(uint16_t type, uint16_t flags);

  mnl_socket* sock_ = nullptr;
  std::string ns_name_;
  uint32_t seq_ = 0;
  link_state last_link_; // set by execute() from an RTM_GETLINK answer
  alignas(8) char buf_[8192];
};

/// Creates a veth pair, `name` in `ns` and `peer_name` in `peer_ns`.
void create_veth(const netns& ns, const std::string& name, const netns& peer_ns,
                 const std::string& peer_name);
/// Sets `link` in `ns` up or down.
void set_link_up(const netns& ns, const std::string& link, bool up = true);
/// Adds an IPv4 address (CIDR) to `link` in `ns`.
void add_address(const netns& ns, const std::string& link, const std::string& cidr);
/// Removes an IPv4 address (CIDR) from `link` in `ns`.
void delete_address(const netns& ns, const std::string& link, const std::string& cidr);
/// Adds an IPv4 route in `ns` to `destination` (CIDR or "default") via `gateway`.
void add_route(const netns& ns, const std::string& destination, const std::string& gateway);

} // namespace backlog_lab::lab
