#include "harness/observer/census.hpp"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <tuple>

namespace backlog_lab::observer {

census_builder::census_builder() : port_head_(65536, -1) {}

std::size_t census_builder::peer_key_hash::operator()(const peer_key& k) const noexcept {
  std::uint64_t lo = 0, hi = 0;
  std::memcpy(&lo, k.address.bytes.data(), 8);
  std::memcpy(&hi, k.address.bytes.data() + 8, 8);
  std::uint64_t h = lo * 0x9E3779B97F4A7C15ull;
  h ^= (hi + k.address.family + (std::uint64_t{k.listener} << 8)) * 0xC2B2AE3D27D4EB4Full;
  return static_cast<std::size_t>(h ^ (h >> 29));
}

void census_builder::add_unaccepted(listener_summary& sum, std::uint32_t owner, const tcp_socket& s,
                                    bool list) {
  if (list) sum.unaccepted_sockets.push_back(s);
  queue_keys_.push_back(std::uint64_t{owner} << 40 |
                        std::uint64_t{static_cast<std::uint8_t>(s.state)} << 32 | s.recv_q);
  auto [it, added] = peer_index_.try_emplace(peer_key{owner, s.remote.address},
                                             static_cast<std::uint32_t>(sum.peers.size()));
  if (added) {
    sum.peers.push_back({s.remote.address, 1, s.recv_q});
  } else {
    ++sum.peers[it->second].count;
    sum.peers[it->second].bytes += s.recv_q;
  }
}

int census_builder::owner_of(const tcp_socket& s) const noexcept {
  // A specific-address listener owns only its own address; a wildcard one (0.0.0.0, [::]) owns
  // every address of its port and family, unless a specific listener matches first (the
  // kernel's lookup prefers the exact match too). With SO_REUSEPORT the first one wins.
  int wildcard = -1;
  for (std::int32_t i = port_head_[s.local.port]; i >= 0; i = next_[i]) {
    const tcp_socket& l = listen_sockets_[i];
    if (l.family != s.family) continue;
    if (l.local.address == s.local.address) return i;
    if (wildcard < 0 && l.local.address.is_any()) wildcard = i;
  }
  return wildcard;
}

void census_builder::start(census& out, bool list_unaccepted) {
  out.totals = {};
  out.socket_count = 0;
  out.unaccepted_close_wait = 0;
  // Leave the port index clean from the previous census (touch only the ports it set).
  for (const tcp_socket& l : listen_sockets_)
    port_head_[l.local.port] = -1;
  listen_sockets_.clear();
  next_.clear();
  queue_keys_.clear();
  peer_index_.clear();
  listeners_open_ = false;
  list_unaccepted_ = list_unaccepted;
}

void census_builder::add_listener(const tcp_socket& s) {
  auto idx = static_cast<std::int32_t>(listen_sockets_.size());
  listen_sockets_.push_back(s);
  next_.push_back(-1);
  // Append at the tail so kernel order decides ties between equal listeners.
  std::int32_t* link = &port_head_[s.local.port];
  while (*link >= 0)
    link = &next_[*link];
  *link = idx;
}

void census_builder::open_listeners(census& out) {
  listeners_open_ = true;
  // Reuse the previous census's listener objects (and their vectors' capacity).
  out.listeners.resize(listen_sockets_.size());
  for (std::size_t i = 0; i < listen_sockets_.size(); ++i) {
    const tcp_socket& l = listen_sockets_[i];
    listener_summary& sum = out.listeners[i];
    auto queued = std::move(sum.queued);
    auto peers = std::move(sum.peers);
    auto unaccepted = std::move(sum.unaccepted_sockets);
    queued.clear();
    peers.clear();
    unaccepted.clear();
    sum = listener_summary{};
    sum.queued = std::move(queued);
    sum.peers = std::move(peers);
    sum.unaccepted_sockets = std::move(unaccepted);
    sum.local = l.local;
    sum.v6only = l.v6only;
    sum.inode = l.inode;
    sum.uid = l.uid;
    sum.accept_queue = l.recv_q;
    sum.backlog = l.send_q;
    sum.full = l.recv_q > l.send_q;
    sum.drops = l.drops;
  }
}

void census_builder::add_child(const tcp_socket& s, census& out) {
  int owner = owner_of(s);
  if (owner < 0) return;
  listener_summary& sum = out.listeners[owner];
  ++sum.children[s.state];
  if (s.inode != 0) {
    ++sum.owned;
  } else if (s.state == tcp_state::established) {
    ++sum.unaccepted_established;
    sum.unaccepted_established_bytes += s.recv_q;
    add_unaccepted(sum, static_cast<std::uint32_t>(owner), s, list_unaccepted_);
  } else if (s.state == tcp_state::close_wait) {
    ++sum.unaccepted_close_wait;
    sum.unaccepted_close_wait_bytes += s.recv_q;
    add_unaccepted(sum, static_cast<std::uint32_t>(owner), s, list_unaccepted_);
  } else {
    ++sum.kernel_only;
  }
}

void census_builder::add(const tcp_socket& s, census& out) {
  ++out.totals[s.state];
  ++out.socket_count;
  if (s.state == tcp_state::listen) {
    add_listener(s);
    return;
  }
  if (!listeners_open_) open_listeners(out);
  if (!listen_sockets_.empty()) add_child(s, out);
}

void census_builder::finish(census& out) {
  if (!listeners_open_) open_listeners(out);

  // Groups of un-accepted children by (state, Recv-Q), in that order, per listener.
  std::sort(queue_keys_.begin(), queue_keys_.end());
  for (std::uint64_t key : queue_keys_) {
    auto& q = out.listeners[key >> 40].queued;
    auto state = static_cast<tcp_state>((key >> 32) & 0xff);
    auto recv_q = static_cast<std::uint32_t>(key);
    if (!q.empty() && q.back().state == state && q.back().recv_q == recv_q)
      ++q.back().count;
    else
      q.push_back({state, recv_q, 1});
  }

  for (auto& sum : out.listeners) {
    // Most children first; equal counts in address order.
    std::sort(sum.peers.begin(), sum.peers.end(), [](const peer_group& a, const peer_group& b) {
      return a.count != b.count ? a.count > b.count : a.address < b.address;
    });
    out.unaccepted_close_wait += sum.unaccepted_close_wait;
  }
  std::stable_sort(out.listeners.begin(), out.listeners.end(),
                   [](const listener_summary& a, const listener_summary& b) {
                     return std::tie(a.local.port, a.local.address.family, a.local.address) <
                            std::tie(b.local.port, b.local.address.family, b.local.address);
                   });
}

void census_builder::summarize(std::span<const tcp_socket> sockets, census& out,
                               bool list_unaccepted) {
  // Listeners first wherever they sit in `sockets`: a child can only be matched to a listener
  // already known.
  start(out, list_unaccepted);
  for (const tcp_socket& s : sockets)
    if (s.state == tcp_state::listen) add(s, out);
  for (const tcp_socket& s : sockets)
    if (s.state != tcp_state::listen) add(s, out);
  finish(out);
}

census summarize(std::span<const tcp_socket> sockets) {
  census out;
  census_builder builder;
  builder.summarize(sockets, out);
  return out;
}

namespace {

/// TCP sockets the namespace holds now (TCP and TCP6 inuse plus TIME-WAIT, from
/// /proc/net/sockstat{,6} read inside it), 0 if unknown. Requests (SYN-RECV) are not counted.
std::size_t sockets_in_use(const lab::netns& ns) {
  std::size_t total = 0;
  lab::netns_scope in(ns); // /proc/thread-self/net is the calling thread's namespace
  for (const char* path : {"/proc/thread-self/net/sockstat", "/proc/thread-self/net/sockstat6"}) {
    std::FILE* f = std::fopen(path, "re");
    if (!f) continue;
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      unsigned long inuse = 0, orphan = 0, tw = 0;
      if (std::sscanf(line, "TCP: inuse %lu orphan %lu tw %lu", &inuse, &orphan, &tw) >= 1 ||
          std::sscanf(line, "TCP6: inuse %lu", &inuse) == 1)
        total += inuse + tw;
    }
    std::fclose(f);
  }
  return total;
}

// A census is two requests in the kernel's own order (its dump walks the listening hash, then the
// established one): the listeners with INET_DIAG_SKMEMINFO for their drops, then every other
// state without extensions, so the many children keep the smallest messages. Neither walks the
// other's table (inet_diag_dump_icsk skips a table no requested state lives in).
dump_filter listener_filter() {
  dump_filter f;
  f.states = state_bit(tcp_state::listen);
  f.meminfo = true;
  return f;
}

dump_filter rest_filter() {
  dump_filter f;
  f.states = all_states_mask & ~state_bit(tcp_state::listen);
  return f;
}

} // namespace

census_reader::census_reader(const lab::netns* ns)
    : diag_(ns), ns_(ns ? ns->duplicate() : lab::netns::current()) {}

void census_reader::read(census& out, census_options options) {
  if (options.summary_only && options.threads <= 1) {
    // Straight into the summary: nothing kept per socket.
    out.sockets.clear();
    builder_.start(out, options.list_unaccepted);
    walk([this, &out](const tcp_socket& s) { builder_.add(s, out); });
    builder_.finish(out);
    return;
  }

  std::vector<tcp_socket>& into = options.summary_only ? scratch_ : out.sockets;
  into.clear();
  // A first census into an empty list: size it once instead of growing it by doubling, which
  // at 100,000 sockets copied ~20 MB and faulted in pages that were dropped again at once.
  if (into.capacity() == 0) into.reserve(sockets_in_use(ns_) * 9 / 8 + 64);
  auto append = [&into](const tcp_socket& s) { into.push_back(s); };
  if (options.threads > 1) {
    diag_.dump(listener_filter(), append);
    dump_split(into, rest_filter());
    choose_split(into);
  } else {
    walk(append);
  }
  if (options.summary_only) out.sockets.clear();
  builder_.summarize(into, out, options.list_unaccepted);
}

std::size_t census_reader::walk(socket_visitor visit) {
  // read()'s order by construction: its single-threaded path is this walk.
  std::size_t n = diag_.dump(listener_filter(), visit);
  return n + diag_.dump(rest_filter(), visit);
}

std::size_t census_reader::walk_pipelined(socket_visitor visit) {
  if (!second_) second_ = std::make_unique<sock_diag_reader>(&ns_);
  // 4 batches of 512 in flight at most: ~0.3 MB, enough for neither side to wait on the other
  // for long (a batch is ~3 ms of dump or formatting at 100,000 sockets).
  constexpr std::size_t batch_size = 512;
  constexpr std::size_t max_ready = 4;
  struct cancelled {};
  std::mutex m;
  std::condition_variable changed;
  std::deque<std::vector<tcp_socket>> ready;
  std::vector<std::vector<tcp_socket>> spare;
  bool done = false;
  bool cancel = false;
  std::exception_ptr failed;

  std::thread dumper([&] {
    std::vector<tcp_socket> batch;
    batch.reserve(batch_size);
    auto hand_over = [&] {
      std::unique_lock lock(m);
      changed.wait(lock, [&] { return ready.size() < max_ready || cancel; });
      if (cancel) throw cancelled{};
      ready.push_back(std::move(batch));
      if (spare.empty()) {
        batch = {};
        batch.reserve(batch_size);
      } else {
        batch = std::move(spare.back());
        spare.pop_back();
      }
      changed.notify_all();
    };
    try {
      auto add = [&](const tcp_socket& s) {
        batch.push_back(s);
        if (batch.size() == batch_size) hand_over();
      };
      second_->dump(listener_filter(), add);
      second_->dump(rest_filter(), add);
      if (!batch.empty()) hand_over();
    } catch (const cancelled&) {
      // the consumer failed; its exception is the one reported
    } catch (...) {
      failed = std::current_exception();
    }
    std::lock_guard lock(m);
    done = true;
    changed.notify_all();
  });

  std::size_t n = 0;
  try {
    for (;;) {
      std::vector<tcp_socket> batch;
      {
        std::unique_lock lock(m);
        changed.wait(lock, [&] { return !ready.empty() || done; });
        if (ready.empty()) break;
        batch = std::move(ready.front());
        ready.pop_front();
        changed.notify_all();
      }
      for (const auto& s : batch)
        visit(s);
      n += batch.size();
      batch.clear();
      std::lock_guard lock(m);
      spare.push_back(std::move(batch));
    }
  } catch (...) {
    {
      std::lock_guard lock(m);
      cancel = true;
      changed.notify_all();
    }
    dumper.join();
    throw;
  }
  dumper.join();
  if (failed) std::rethrow_exception(failed);
  return n;
}

void census_reader::dump_split(std::vector<tcp_socket>& into, const dump_filter& rest) {
  if (!second_) second_ = std::make_unique<sock_diag_reader>(&ns_);
  second_scratch_.clear();
  std::exception_ptr failed;
  std::thread worker([this, &failed, &rest] {
    try {
      dump_filter upper = rest;
      upper.min_local_port = split_port_;
      second_->dump(upper, [this](const tcp_socket& s) { second_scratch_.push_back(s); });
    } catch (...) {
      failed = std::current_exception();
    }
  });
  try {
    dump_filter lower = rest;
    lower.max_local_port = static_cast<std::uint16_t>(split_port_ - 1);
    diag_.dump(lower, [&into](const tcp_socket& s) { into.push_back(s); });
  } catch (...) {
    worker.join();
    throw;
  }
  worker.join();
  if (failed) std::rethrow_exception(failed);
  into.insert(into.end(), second_scratch_.begin(), second_scratch_.end());
}

void census_reader::choose_split(std::span<const tcp_socket> sockets) {
  // Next time, split where half of this census's sockets lie below (256-port granularity).
  std::array<std::uint32_t, 256> buckets{};
  for (const auto& s : sockets)
    ++buckets[s.local.port >> 8];
  const std::size_t half = sockets.size() / 2;
  std::size_t below = 0, best_gap = sockets.size() + 1;
  for (std::size_t b = 1; b < buckets.size(); ++b) {
    below += buckets[b - 1];
    std::size_t gap = below > half ? below - half : half - below;
    if (gap < best_gap) {
      best_gap = gap;
      split_port_ = static_cast<std::uint16_t>(b << 8);
    }
  }
}

census census_reader::read(census_options options) {
  census out;
  read(out, options);
  return out;
}

} // namespace backlog_lab::observer
