#include "harness/observer/json.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace backlog_lab::observer {

using nlohmann::json;

const char* family_name(std::uint8_t family) noexcept {
  return family == AF_INET6 ? "inet6" : family == AF_INET ? "inet" : "unknown";
}

std::string shutdown_marker(std::uint8_t shutdown) {
  // iproute2 misc/ss.c: bit 0 (RCV_SHUTDOWN) turns '<' into '-', bit 1 (SEND_SHUTDOWN) '>'.
  std::string m = "<->";
  if (shutdown & 1) m[0] = '-';
  if (shutdown & 2) m[2] = '-';
  return m;
}

namespace {

/// The states in the order of their names, as an object keyed by them lists them.
const std::array<tcp_state, tcp_state_slots - 1>& states_by_name() {
  static const auto order = [] {
    std::array<tcp_state, tcp_state_slots - 1> a{};
    for (std::uint8_t i = 1; i < tcp_state_slots; ++i)
      a[i - 1] = static_cast<tcp_state>(i);
    std::sort(a.begin(), a.end(),
              [](tcp_state x, tcp_state y) { return state_name(x) < state_name(y); });
    return a;
  }();
  return order;
}

/// The tree of what `write` writes: the text parsed back, so to_json and write_json agree.
template <class Write> json parsed(Write write) {
  std::string text;
  {
    json_writer w(text);
    write(w);
    w.finish();
  }
  return json::parse(text);
}

// dump(2)'s indentation of a value at `depth`.
std::string_view indent_of(std::size_t depth) {
  static const std::string spaces(64, ' ');
  return std::string_view(spaces).substr(0, std::min<std::size_t>(2 * depth, spaces.size()));
}

// Keys in each object below are in byte order, as dump() prints a std::map-ordered object.
template <class Walk>
void write_census(json_writer& w, const census& c, bool with_sockets, Walk walk) {
  w.begin_object();
  w.key("listeners");
  w.begin_array();
  for (const auto& l : c.listeners)
    write_json(w, l);
  w.end_array();
  w.member("socket_count", c.socket_count);
  if (with_sockets) {
    w.key("sockets");
    w.begin_array();
    walk([&w](const tcp_socket& s) { write_json(w, s); });
    w.end_array();
  }
  w.key("totals");
  write_json(w, c.totals);
  w.member("unaccepted_close_wait", c.unaccepted_close_wait);
  w.end_object();
}

} // namespace

void write_json(json_writer& w, const state_counts& counts) {
  w.begin_object();
  for (tcp_state s : states_by_name())
    if (counts[s]) w.member(state_name(s), counts[s]);
  w.end_object();
}

void write_json(json_writer& w, const tcp_socket& s) {
  // A census writes this 100,000 times: the object is assembled in one buffer rather than member
  // by member. Every string in it is ASCII needing no escape (addresses, ss's endpoint forms,
  // family, shutdown and state names), so the text is what the members would give, keys in
  // dump()'s order (tests/harness/observer/json_test.cpp holds it to the tree's dump(2)).
  thread_local std::string out;
  thread_local std::string local;
  thread_local std::string peer;
  out.clear();
  local = s.local.address.to_string();
  peer = s.remote.address.to_string();
  const std::size_t depth = w.depth();
  const std::string_view inner_indent = indent_of(depth + 1);
  bool first = true;
  auto key = [&](std::string_view k) {
    out += first ? "\n" : ",\n";
    first = false;
    out += inner_indent;
    out += '"';
    out += k;
    out += "\": ";
  };
  auto text = [&](std::string_view k, std::string_view v) {
    key(k);
    out += '"';
    out += v;
    out += '"';
  };
  auto number = [&](std::string_view k, std::uint64_t v) {
    key(k);
    char digits[24];
    out.append(digits, std::to_chars(digits, digits + sizeof digits, v).ptr);
  };
  auto endpoint_text = [&](std::string_view k, const endpoint& e, const std::string& address) {
    key(k);
    out += '"';
    append_endpoint(out, e, s.v6only, address);
    out += '"';
  };
  out += '{';
  text("family", family_name(s.family));
  number("ifindex", s.ifindex);
  number("inode", s.inode);
  endpoint_text("local", s.local, local);
  text("local_address", local);
  number("local_port", s.local.port);
  endpoint_text("peer", s.remote, peer);
  text("peer_address", peer);
  number("peer_port", s.remote.port);
  number("recv_q", s.recv_q);
  number("send_q", s.send_q);
  text("shutdown", shutdown_marker(s.shutdown));
  text("state", state_name(s.state));
  number("uid", s.uid);
  key("v6only");
  out += s.v6only ? "true" : "false";
  out += '\n';
  out += indent_of(depth);
  out += '}';
  w.rendered_value(out);
}

void write_json(json_writer& w, const listener_summary& l) {
  w.begin_object();
  w.member("accept_queue", l.accept_queue);
  w.member("address", l.local.address.to_string());
  w.member("backlog", l.backlog);
  w.key("children");
  write_json(w, l.children);
  w.member("drops", l.drops);
  w.member("family", family_name(l.local.address.family));
  w.member("full", l.full);
  w.member("inode", l.inode);
  w.member("kernel_only", l.kernel_only);
  w.member("local", format_endpoint(l.local, l.v6only));
  w.member("owned", l.owned);
  w.member("port", l.local.port);
  w.member("uid", l.uid);
  w.key("unaccepted");
  w.begin_object();
  w.member("bytes", l.unaccepted_bytes());
  w.member("close_wait", l.unaccepted_close_wait);
  w.member("close_wait_bytes", l.unaccepted_close_wait_bytes);
  w.member("count", l.unaccepted());
  w.member("established", l.unaccepted_established);
  w.member("established_bytes", l.unaccepted_established_bytes);
  w.key("peers");
  w.begin_array();
  for (const auto& p : l.peers) {
    w.begin_object();
    w.member("address", p.address.to_string());
    w.member("bytes", p.bytes);
    w.member("count", p.count);
    w.end_object();
  }
  w.end_array();
  w.key("queued");
  w.begin_array();
  for (const auto& q : l.queued) {
    w.begin_object();
    w.member("count", q.count);
    w.member("recv_q", q.recv_q);
    w.member("state", state_name(q.state));
    w.end_object();
  }
  w.end_array();
  w.end_object();
  w.member("v6only", l.v6only);
  w.end_object();
}

void write_json(json_writer& w, const census& c, bool with_sockets) {
  write_census(w, c, with_sockets, [&c](auto visit) {
    for (const auto& s : c.sockets)
      visit(s);
  });
}

void write_json(json_writer& w, const census& summary, census_reader& sockets) {
  write_census(w, summary, true, [&sockets](auto visit) { sockets.walk_pipelined(visit); });
}

void write_json(json_writer& w, const counter_map& counters) {
  // counter_map is a std::map of std::string: already in dump()'s key order.
  w.begin_object();
  for (const auto& [name, value] : counters)
    w.member(name, value);
  w.end_object();
}

json to_json(const state_counts& counts) {
  return parsed([&](json_writer& w) { write_json(w, counts); });
}

json to_json(const tcp_socket& s) {
  return parsed([&](json_writer& w) { write_json(w, s); });
}

json to_json(const listener_summary& l) {
  return parsed([&](json_writer& w) { write_json(w, l); });
}

json to_json(const census& c, bool with_sockets) {
  return parsed([&](json_writer& w) { write_json(w, c, with_sockets); });
}

json to_json(const counter_map& counters) {
  return parsed([&](json_writer& w) { write_json(w, counters); });
}

json to_json(const timeline& t) {
  json listeners = json::array();
  for (const auto& l : t.listeners) {
    json jl{
        {"namespace", t.namespaces.at(l.ns)},
        {"local", format_endpoint(l.local, l.v6only)},
        {"address", l.local.address.to_string()},
        {"port", l.local.port},
        {"backlog", l.backlog},
        {"peak_accept_queue", l.peak_accept_queue},
        {"drops", l.drops},
        {"time_full_ms", l.time_full_ms},
        {"first_full_ms", l.first_full_ms ? json(*l.first_full_ms) : json(nullptr)},
        {"first_seen_ms", l.first_seen_ms},
        {"last_seen_ms", l.last_seen_ms},
    };
    listeners.push_back(std::move(jl));
  }
  json samples = json::array();
  for (const auto& s : t.samples) {
    json ns = json::array();
    for (const auto& p : s.namespaces) {
      json counters = json::object();
      for (std::size_t i = 0; i < p.counters.size() && i < t.counter_names.size(); ++i)
        counters[t.counter_names[i]] = p.counters[i];
      ns.push_back({{"totals", to_json(p.totals)},
                    {"unaccepted_close_wait", p.unaccepted_close_wait},
                    {"counters", std::move(counters)}});
    }
    json ls = json::array();
    for (const auto& l : s.listeners)
      ls.push_back({{"listener", l.listener},
                    {"accept_queue", l.accept_queue},
                    {"backlog", l.backlog},
                    {"drops", l.drops}});
    samples.push_back(
        {{"t_ms", s.t_ms}, {"namespaces", std::move(ns)}, {"listeners", std::move(ls)}});
  }
  return json{
      {"interval_ms", t.interval.count()}, {"namespaces", t.namespaces},
      {"counter_names", t.counter_names},  {"listeners", std::move(listeners)},
      {"samples", std::move(samples)},
  };
}

} // namespace backlog_lab::observer
