#pragma once
// The socket census of one namespace: every TCP socket, per-state totals, and per listener its
// accept queue and the children on its address:port, un-accepted (still in the accept queue)
// apart from owned ones. The rule for "un-accepted" is docs/reference/kernel.md section 3: state
// ESTAB or CLOSE-WAIT, inode 0, on a listener's local address:port.
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "harness/lab/netns.hpp"
#include "harness/observer/sock_diag.hpp"
#include "harness/observer/tcp_state.hpp"

namespace backlog_lab::observer {

/// Un-accepted children of one listener that share a state and a Recv-Q value.
struct queued_group {
  tcp_state state = tcp_state::established;
  std::uint32_t recv_q = 0; ///< unread bytes, +1 if the peer's FIN is queued too
  std::uint32_t count = 0;
  bool operator==(const queued_group&) const = default;
};

/// Un-accepted children of one listener from one peer address.
struct peer_group {
  ip_address address;
  std::uint32_t count = 0;
  std::uint64_t bytes = 0; ///< sum of their Recv-Q
  bool operator==(const peer_group&) const = default;
};

/// A listening socket and what sits on its address:port.
struct listener_summary {
  endpoint local;
  bool v6only = false;
  std::uint32_t inode = 0;
  std::uint32_t uid = 0;
  std::uint32_t accept_queue = 0; ///< Recv-Q of the LISTEN socket: children waiting for accept()
  std::uint32_t backlog = 0;      ///< Send-Q of the LISTEN socket: min(listen() backlog, somaxconn)
  bool full = false; ///< accept_queue > backlog: it holds backlog + 1 (docs/reference/kernel.md 1)
  std::uint32_t drops = 0; ///< sk_drops: SYNs and ACKs this listener dropped since it was opened

  state_counts children; ///< every non-LISTEN socket on this listener's address:port, by state
  std::uint32_t unaccepted_established = 0; ///< ESTAB, inode 0: in the queue, peer still open
  std::uint64_t unaccepted_established_bytes = 0;
  std::uint32_t unaccepted_close_wait = 0; ///< CLOSE-WAIT, inode 0: in the queue, peer sent FIN
  std::uint64_t unaccepted_close_wait_bytes = 0;
  std::uint32_t owned = 0;       ///< inode != 0: accepted, held by a process
  std::uint32_t kernel_only = 0; ///< inode 0 in other states: requests, orphans, TIME-WAIT
  /// Un-accepted children grouped by (state, Recv-Q), sorted by state then Recv-Q.
  std::vector<queued_group> queued;
  /// Un-accepted children grouped by peer address, most frequent first.
  std::vector<peer_group> peers;
  /// The un-accepted children themselves, in kernel order; filled only when asked
  /// (census_options::list_unaccepted), e.g. to tell which stayed queued between two censuses.
  std::vector<tcp_socket> unaccepted_sockets;

  std::uint32_t unaccepted() const noexcept {
    return unaccepted_established + unaccepted_close_wait;
  }
  std::uint64_t unaccepted_bytes() const noexcept {
    return unaccepted_established_bytes + unaccepted_close_wait_bytes;
  }
  bool operator==(const listener_summary&) const = default;
};

/// A census of one namespace at one moment.
struct census {
  std::vector<tcp_socket> sockets;         ///< kernel order; empty when summary_only was asked
  std::vector<listener_summary> listeners; ///< sorted by port, then family, then address
  state_counts totals;                     ///< every socket of the namespace by state
  std::uint32_t socket_count = 0;
  std::uint32_t unaccepted_close_wait = 0; ///< sum over listeners
};

/// How much a census materialises.
struct census_options {
  /// Skip census::sockets (totals and listeners only): cheaper, and with threads = 1 the sockets
  /// stream into the summary, so memory does not grow with the namespace's socket count.
  bool summary_only = false;
  /// 2: dump two halves of the namespace (split by local port) on two threads at once. The
  /// kernel's dump dominates a big census, so this nearly halves its wall time on an idle
  /// second core; it costs ~20% more CPU in all. 1 (default) stays on the calling thread.
  unsigned threads = 1;
  bool list_unaccepted = false; ///< fill listener_summary::unaccepted_sockets
};

/// Builds listener summaries from a socket list or a stream of sockets; keeps its scratch space
/// between calls so a steady-state census allocates nothing per socket.
class census_builder {
public:
  census_builder();
  /// Fills `out.listeners`, `out.totals`, `out.socket_count` and `out.unaccepted_close_wait`
  /// from `sockets` (out.sockets is left alone); with `list_unaccepted`, each listener's
  /// unaccepted_sockets too.
  void summarize(std::span<const tcp_socket> sockets, census& out, bool list_unaccepted = false);

  /// The same summary from sockets met one at a time (nothing kept per socket but un-accepted
  /// children): start(), add() for every socket, all LISTEN ones before any other, finish().
  void start(census& out, bool list_unaccepted = false);
  /// Counts `s` into the census `start` began.
  void add(const tcp_socket& s, census& out);
  /// Groups and sorts what add() collected; `out` is complete after it.
  void finish(census& out);

private:
  /// A peer address of one listener's un-accepted children (the key of peer_index_).
  struct peer_key {
    std::uint32_t listener;
    ip_address address;
    bool operator==(const peer_key&) const = default;
  };
  struct peer_key_hash {
    std::size_t operator()(const peer_key& k) const noexcept;
  };
  int owner_of(const tcp_socket& s) const noexcept;
  void add_listener(const tcp_socket& s);
  void open_listeners(census& out);
  void add_child(const tcp_socket& s, census& out);
  void add_unaccepted(listener_summary& sum, std::uint32_t owner, const tcp_socket& s, bool list);

  std::vector<std::int32_t> port_head_; ///< per port: first listener index, -1 if none
  std::vector<std::int32_t> next_;      ///< per listener: next listener on the same port
  std::vector<tcp_socket> listen_sockets_;
  bool listeners_open_ = false; ///< out.listeners holds a summary per listen_sockets_ entry
  bool list_unaccepted_ = false;
  /// Un-accepted children packed as listener << 40 | state << 32 | Recv-Q: sorting plain
  /// integers groups them for listener_summary::queued several times faster than sorting
  /// structs (at 40,000 children the sorts were half of the aggregation).
  std::vector<std::uint64_t> queue_keys_;
  /// Where each (listener, peer address) group sits in its listener's peers.
  std::unordered_map<peer_key, std::uint32_t, peer_key_hash> peer_index_;
};

/// Builds summaries for `sockets` (a convenience over census_builder).
census summarize(std::span<const tcp_socket> sockets);

/// A reusable census source for one namespace: a sock_diag socket plus scratch buffers.
class census_reader {
public:
  /// Opens the reader in `ns` (nullptr: the calling thread's namespace).
  explicit census_reader(const lab::netns* ns = nullptr);
  census_reader(census_reader&&) noexcept = default;
  census_reader& operator=(census_reader&&) noexcept = default;
  /// Takes a census into `out`, reusing its storage.
  void read(census& out, census_options options = {});
  /// Takes a census.
  census read(census_options options = {});
  /// Streams every socket to `visit` without building anything; returns the count.
  std::size_t for_each(socket_visitor visit) { return diag_.dump(visit); }
  /// Streams every socket to `visit` in the order read() lists them in census::sockets (every
  /// LISTEN socket, then every other state), keeping none; returns the count.
  std::size_t walk(socket_visitor visit);
  /// walk() with the kernel's dump on a second thread, handed over in small batches, so that
  /// `visit` (the JSON writer) works on one batch while the next is dumped. It uses a few
  /// batches of memory, whatever the socket count. An exception from `visit` stops the dump.
  std::size_t walk_pipelined(socket_visitor visit);

private:
  void dump_split(std::vector<tcp_socket>& into, const dump_filter& rest);
  void choose_split(std::span<const tcp_socket> sockets);

  sock_diag_reader diag_;
  std::unique_ptr<sock_diag_reader> second_; ///< opened on first threads = 2 use
  lab::netns ns_;                            ///< the namespace, for opening second_
  census_builder builder_;
  std::vector<tcp_socket> scratch_;
  std::vector<tcp_socket> second_scratch_;
  std::uint16_t split_port_ = 32768; ///< halves: local port < split, >= split
};

} // namespace backlog_lab::observer
