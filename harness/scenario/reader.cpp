#include "harness/scenario/reader.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/unique_fd.hpp"
#include "harness/scenario/config_template.hpp"
#include "scenarios/builtin.hpp"

namespace backlog_lab::scenario {
namespace {

using json = nlohmann::json;
using pointer = json::json_pointer;

constexpr std::size_t max_name_bytes = 128;
constexpr std::size_t max_sysctl_value_bytes = 256;

std::string type_name(const json& j) {
  if (j.is_number_integer() || j.is_number_unsigned()) return "an integer";
  if (j.is_number_float()) return "a number";
  return std::string("a") + (j.is_object() || j.is_array() ? "n " : " ") + j.type_name();
}

// An integer in [min, max] at `p`, or input_error naming the file, the path and the range.
long long integer_at(const json& v, const pointer& p, long long min, long long max,
                     const std::string& source) {
  auto fail = [&](const std::string& expected) -> long long {
    throw input_error(source + ": " + p.to_string(), expected);
  };
  std::string range = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::floor(d) != d) fail("expected " + range + ", got " + v.dump());
  } else if (!v.is_number()) {
    fail("expected " + range + ", got " + type_name(v));
  }
  if (v.is_number_unsigned() && v.get<unsigned long long>() > static_cast<unsigned long long>(max))
    fail("expected " + range + ", got " + v.dump());
  long long n = v.is_number_float() ? static_cast<long long>(v.get<double>()) : v.get<long long>();
  if (n < min || n > max) fail("expected " + range + ", got " + v.dump());
  return n;
}

// A JSON object being read: records which keys were used so the rest can be rejected.
class object_reader {
public:
  object_reader(const json& j, pointer path, const std::string& source)
      : j_(j), path_(std::move(path)), source_(source) {
    if (!j_.is_object()) fail(path_, "expected an object, got " + type_name(j_));
  }

  [[noreturn]] void fail(const pointer& at, const std::string& expected) const {
    std::string where = at.to_string();
    throw input_error(source_ + ": " + (where.empty() ? "/" : where), expected);
  }

  const json* find(const std::string& key) {
    known_.insert(key);
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  pointer at(const std::string& key) const { return path_ / key; }

  void string(const std::string& key, std::string& out, bool required = false,
              const std::vector<std::string>& allowed = {}) {
    const json* v = find(key);
    if (!v) {
      if (required) fail(at(key), "required field '" + key + "' (a string) is missing");
      return;
    }
    if (!v->is_string()) fail(at(key), "expected a string, got " + type_name(*v));
    out = v->get<std::string>();
    if (required && out.empty()) fail(at(key), "expected a non-empty string");
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), out) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed)
        list += (list.empty() ? "" : ", ") + ("\"" + a + "\"");
      fail(at(key), "expected one of " + list + ", got \"" + out + "\"");
    }
  }

  // One of the spellings of enum E (enums.hpp), turned into its value here and nowhere else.
  template <class E> void choice(const std::string& key, E& out, bool required = false) {
    const json* v = find(key);
    if (!v) {
      if (required)
        fail(at(key), "required field '" + key + "' (one of " + enum_choices<E>() + ") is missing");
      return;
    }
    if (!v->is_string())
      fail(at(key), "expected one of " + enum_choices<E>() + ", got " + type_name(*v));
    auto value = enum_from_name<E>(v->get<std::string>());
    if (!value)
      fail(at(key), "expected one of " + enum_choices<E>() + ", got \"" +
                        printable(v->get<std::string>(), 80) + "\"");
    out = *value;
  }

  // A name that reaches reports, verdict lines and rule comments: no control characters (a
  // newline in a name could forge a PASS line) and bounded.
  void name(const std::string& key, std::string& out) {
    string(key, out, true);
    if (out.size() > max_name_bytes)
      fail(at(key), "a name of at most " + std::to_string(max_name_bytes) + " bytes (it has " +
                        std::to_string(out.size()) + ")");
    for (unsigned char c : out)
      if (c < 0x20 || c == 0x7f)
        fail(at(key), "a name without control characters (newline, tab, ...), got \"" +
                          printable(out, 80) + "\"");
  }

  template <class T>
  void integer(const std::string& key, T& out, long long min, long long max,
               bool required = false) {
    const json* v = find(key);
    if (!v) {
      if (required) fail(at(key), "required field '" + key + "' (an integer) is missing");
      return;
    }
    out = static_cast<T>(integer_value(*v, at(key), min, max));
  }

  long long integer_value(const json& v, const pointer& p, long long min, long long max) const {
    return integer_at(v, p, min, max, source_);
  }

  void number(const std::string& key, double& out, double min, double max) {
    const json* v = find(key);
    if (!v) return;
    if (!v->is_number()) fail(at(key), "expected a number, got " + type_name(*v));
    out = v->get<double>();
    if (!(out >= min && out <= max))
      fail(at(key), "expected a number in [" + json(min).dump() + ", " + json(max).dump() +
                        "], got " + v->dump());
  }

  void boolean(const std::string& key, bool& out) {
    const json* v = find(key);
    if (!v) return;
    if (!v->is_boolean()) fail(at(key), "expected true or false, got " + type_name(*v));
    out = v->get<bool>();
  }

  // Calls `each(element, path)` for every element of an array field.
  void array(const std::string& key, const std::function<void(const json&, const pointer&)>& each,
             bool required = false) {
    const json* v = find(key);
    if (!v) {
      if (required) fail(at(key), "required field '" + key + "' (an array) is missing");
      return;
    }
    if (!v->is_array()) fail(at(key), "expected an array, got " + type_name(*v));
    for (size_t i = 0; i < v->size(); ++i)
      each((*v)[i], at(key) / i);
  }

  // Rejects keys nobody asked for: a typo must not silently become a default.
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (known_.count(it.key())) continue;
      std::string list;
      for (const auto& k : known_)
        list += (list.empty() ? "" : ", ") + k;
      fail(path_ / it.key(), "unknown field '" + it.key() + "' (expected one of: " + list + ")");
    }
  }

private:
  const json& j_;
  pointer path_;
  const std::string& source_;
  std::set<std::string> known_;
};

std::vector<std::string> string_list(object_reader& r, const std::string& key,
                                     const std::string& source) {
  std::vector<std::string> out;
  r.array(key, [&](const json& v, const pointer& p) {
    if (!v.is_string() || v.get<std::string>().empty())
      throw input_error(source + ": " + p.to_string(),
                        "expected a non-empty string, got " + type_name(v));
    out.push_back(v.get<std::string>());
  });
  return out;
}

constexpr long long max_ms = 24LL * 3600 * 1000;

size_spec read_size(const json& v, const pointer& p, const std::string& source) {
  size_spec s;
  if (v.is_number()) {
    s.min = s.max = static_cast<uint32_t>(integer_at(v, p, 0, 16 << 20, source));
    return s;
  }
  object_reader r(v, p, source);
  r.integer("min", s.min, 0, 16 << 20, true);
  r.integer("max", s.max, 0, 16 << 20, true);
  r.finish();
  if (s.max < s.min)
    throw input_error(source + ": " + (p / "max").to_string(), "expected max >= min");
  return s;
}

const std::map<std::string, int> reload_signals = {
    {"HUP", SIGHUP}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"INT", SIGINT}};

// A program: argv (required), env, config lines, readiness timeout, reload (proxy only).
exec_spec read_exec(const json& v, const pointer& p, const std::string& source, bool proxy) {
  object_reader r(v, p, source);
  exec_spec e;
  e.argv = string_list(r, "argv", source);
  if (e.argv.empty()) r.fail(r.at("argv"), "required field 'argv' (a non-empty array of strings)");
  if (const json* env = r.find("env")) {
    if (!env->is_object()) r.fail(r.at("env"), "expected an object of names to strings");
    for (auto it = env->begin(); it != env->end(); ++it) {
      if (!it->is_string()) r.fail(r.at("env") / it.key(), "expected a string");
      e.env[it.key()] = it->get<std::string>();
    }
  }
  r.array("config", [&](const json& line, const pointer& lp) {
    if (!line.is_string()) throw input_error(source + ": " + lp.to_string(), "expected a string");
    e.config.push_back(line.get<std::string>());
  });
  r.integer("ready_timeout_ms", e.ready_timeout_ms, 1, 600000);
  r.string("sent_bytes_log", e.sent_bytes_log);
  e.metrics_command = string_list(r, "metrics_command", source);
  if (const json* rl = r.find("reload")) {
    if (!proxy) r.fail(r.at("reload"), "no 'reload' (only an exec proxy is reloaded)");
    object_reader rr(*rl, r.at("reload"), source);
    std::string sig;
    std::vector<std::string> names;
    for (const auto& [n, _] : reload_signals)
      names.push_back(n);
    rr.string("signal", sig, false, names);
    if (!sig.empty()) e.reload.signal = reload_signals.at(sig);
    e.reload.command = string_list(rr, "command", source);
    if ((e.reload.signal != 0) == !e.reload.command.empty())
      rr.fail(r.at("reload"),
              "exactly one of 'signal' (\"HUP\", ...) or 'command' (an argv array)");
    rr.finish();
  }
  r.finish();
  return e;
}

backend_spec read_backend(const json& v, const pointer& p, const std::string& source) {
  object_reader r(v, p, source);
  backend_spec b;
  r.name("name", b.name);
  r.choice("kind", b.kind);
  r.integer("port", b.port, 1, 65535);
  r.integer("backlog", b.backlog, 0, 65535);
  r.integer("service_time_ms", b.service_time_ms, 0, max_ms);
  r.boolean("keep_alive", b.keep_alive);
  r.integer("response_bytes", b.response_bytes, 0, 16 << 20);
  if (const json* e = r.find("exec")) {
    if (b.kind != backend_kind::exec) r.fail(r.at("exec"), "no 'exec' unless kind is \"exec\"");
    b.exec = read_exec(*e, r.at("exec"), source, false);
  } else if (b.kind == backend_kind::exec) {
    r.fail(r.at("exec"), "required field 'exec' (the program: {\"argv\": [...]}) is missing");
  }
  r.finish();
  return b;
}

service_spec read_service(const json& v, const pointer& p, const std::string& source) {
  object_reader r(v, p, source);
  service_spec s;
  r.name("name", s.name);
  r.choice("type", s.type);
  r.integer("node_port", s.node_port, 1, 65535, true);
  r.integer("port", s.port, 1, 65535);
  r.string("cluster_ip", s.cluster_ip);
  in_addr ignored{};
  if (!s.cluster_ip.empty() && ::inet_pton(AF_INET, s.cluster_ip.c_str(), &ignored) != 1)
    r.fail(r.at("cluster_ip"), "an IPv4 address such as 10.96.0.10 (the lab is IPv4), got \"" +
                                   printable(s.cluster_ip, 80) + "\"");
  if (s.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                               "/:-._") != std::string::npos)
    r.fail(r.at("name"), "a service name like \"namespace/name:port\" (letters, digits, / : - . _; "
                         "it becomes a rule comment), got \"" +
                             printable(s.name, 80) + "\"");
  s.endpoints = string_list(r, "endpoints", source);
  r.choice("external_traffic_policy", s.external_traffic_policy);
  // One /24 of another node's pod range holds them (10.244.1.10 to .249).
  r.integer("other_node_endpoints", s.other_node_endpoints, 0, 240);
  if (const json* remote = r.find("remote_endpoints")) {
    object_reader rr(*remote, r.at("remote_endpoints"), source);
    rr.integer("count", s.remote.count, 1, static_cast<long long>(limits::max_remote_endpoints),
               true);
    rr.name("stand_in", s.remote.stand_in);
    rr.finish();
  }
  r.finish();
  return s;
}

proxy_spec read_proxy(const json& v, const pointer& p, const std::string& source) {
  object_reader r(v, p, source);
  proxy_spec x;
  r.choice("mode", x.mode, true);
  r.choice("preset", x.preset);
  // nftables mode exists from 1.29 on, iptables mode's presets end before it.
  const bool nft_preset = x.preset == proxy_preset::v1_29 || x.preset == proxy_preset::v1_33 ||
                          x.preset == proxy_preset::v1_37;
  if (x.mode == proxy_mode::nftables && !nft_preset)
    r.fail(r.at("preset"), "expected \"1.29\", \"1.33\" or \"1.37\" for mode \"nftables\"");
  if (x.mode == proxy_mode::iptables && nft_preset)
    r.fail(r.at("preset"),
           "expected \"1.5\", \"1.6.5\", \"1.20\" or \"1.24\" for mode \"iptables\"");
  r.integer("backlog", x.backlog, -1, 65535);
  r.integer("sync_delay_ms", x.sync_delay_ms, 0, max_ms);
  r.integer("nat_commit_delay_ms", x.nat_commit_delay_ms, 0, 60000);
  if (r.find("dial_timeouts_ms")) {
    x.dial_timeouts_ms.clear();
    r.array("dial_timeouts_ms", [&](const json& t, const pointer& tp) {
      x.dial_timeouts_ms.push_back(static_cast<uint32_t>(r.integer_value(t, tp, 1, 600000)));
    });
    if (x.dial_timeouts_ms.empty())
      r.fail(r.at("dial_timeouts_ms"), "expected at least one timeout");
  }
  r.boolean("half_close", x.half_close);
  r.choice("session_affinity", x.session_affinity);
  r.integer("affinity_timeout_s", x.affinity_timeout_s, 1, 86400);
  r.boolean("masquerade_all", x.masquerade_all);
  r.boolean("localhost_node_ports", x.localhost_node_ports);
  // kube-proxy has it from 1.37, in nftables mode only (docs/proxy-nftables.md).
  if (x.localhost_node_ports && (x.mode != proxy_mode::nftables || x.preset != proxy_preset::v1_37))
    r.fail(r.at("localhost_node_ports"),
           "true only with mode \"nftables\" and preset \"1.37\" (kube-proxy's "
           "KubeProxyNFTablesLocalhostNodePorts)");
  if (const json* e = r.find("exec")) {
    if (x.mode != proxy_mode::exec) r.fail(r.at("exec"), "no 'exec' unless mode is \"exec\"");
    x.exec = read_exec(*e, r.at("exec"), source, true);
  } else if (x.mode == proxy_mode::exec) {
    r.fail(r.at("exec"), "required field 'exec' (the program: {\"argv\": [...]}) is missing");
  }
  r.finish();
  return x;
}

client_group_spec read_client(const json& v, const pointer& p, const std::string& source) {
  object_reader r(v, p, source);
  client_group_spec c;
  r.name("name", c.name);
  r.choice("kind", c.kind);
  r.choice("from", c.from);
  r.string("target_service", c.target_service);
  r.string("target", c.target);
  r.string("target_client", c.target_client);
  int targets = !c.target.empty() + !c.target_service.empty() + !c.target_client.empty();
  if (targets > 1) r.fail(p, "only one of 'target_service', 'target' and 'target_client'");
  if (targets == 0 && c.kind != client_kind::exec)
    r.fail(p, "one of 'target_service' (a service name), 'target' (\"ADDR:PORT\") or "
              "'target_client' (an exec client's name)");
  r.integer("listen_port", c.listen_port, 1, 65535);
  if (const json* e = r.find("exec")) {
    if (c.kind != client_kind::exec) r.fail(r.at("exec"), "no 'exec' unless kind is \"exec\"");
    c.exec = read_exec(*e, r.at("exec"), source, false);
  } else if (c.kind == client_kind::exec) {
    r.fail(r.at("exec"), "required field 'exec' (the program: {\"argv\": [...]}) is missing");
  }
  r.choice("arrival", c.arrival);
  r.number("rate_per_s", c.rate_per_s, 0.001, 1e6);
  r.integer("concurrency", c.concurrency, 1, 1000000);
  r.integer("interval_ms", c.interval_ms, 1, max_ms);
  r.integer("checkers", c.checkers, 1, 200);
  if (const json* rb = r.find("request_bytes"))
    c.request_bytes = read_size(*rb, r.at("request_bytes"), source);
  r.choice("request_kind", c.request_kind);
  r.integer("connect_timeout_ms", c.connect_timeout_ms, 1, max_ms);
  r.integer("response_timeout_ms", c.response_timeout_ms, 0, max_ms);
  r.integer("start_ms", c.start_ms, 0, max_ms);
  if (r.find("stop_ms")) {
    uint32_t stop = 0;
    r.integer("stop_ms", stop, 0, max_ms);
    c.stop_ms = stop;
  }
  r.integer("max_connections", c.max_connections, 0, 100000000);
  r.finish();
  return c;
}

loss_spec read_loss(const json& v, const pointer& p, const std::string& source) {
  object_reader r(v, p, source);
  loss_spec l;
  r.choice("direction", l.direction, true);
  if (r.find("port")) {
    uint16_t port = 0;
    r.integer("port", port, 1, 65535);
    l.port = port;
  }
  r.choice("tcp_flags", l.tcp_flags);
  if (!r.find("share"))
    r.fail(r.at("share"), "required field 'share' (a number in [0, 1]) is missing");
  r.number("share", l.share, 0, 1);
  r.finish();
  return l;
}

event_spec read_event(const json& v, const pointer& p, const std::string& source) {
  object_reader r(v, p, source);
  event_spec e;
  r.integer("at_ms", e.at_ms, 0, max_ms, true);
  r.choice("action", e.action, true);
  r.string("target", e.target, true);
  e.endpoints = string_list(r, "endpoints", source);
  r.finish();
  return e;
}

expectation_spec read_expectation(const json& v, const pointer& p, const std::string& source) {
  object_reader r(v, p, source);
  expectation_spec x;
  r.string("metric", x.metric, true);
  r.choice("op", x.op);
  if (const json* val = r.find("value")) {
    if (!val->is_number()) r.fail(r.at("value"), "expected a number, got " + type_name(*val));
    x.value = val->get<double>();
  }
  if (r.find("other")) {
    std::string other;
    r.string("other", other, true);
    x.other = other;
  }
  if (x.value.has_value() == x.other.has_value())
    r.fail(p, "exactly one of 'value' (a number) or 'other' (a metric name)");
  r.string("description", x.description);
  r.finish();
  return x;
}

// Every placeholder of every program must be one the runner fills for its role
// (docs/your-software.md#placeholders): a typo fails when the scenario is read, not mid-run.
void check_placeholders(const exec_spec& e, const std::string& at, const scenario& s,
                        const std::set<std::string>& role_names, const std::string& source) {
  std::set<std::string> known = {"dir", "config", "name", "node_address",
                                 // items of the endpoint lists
                                 "address", "port", "index"};
  known.insert(role_names.begin(), role_names.end());
  for (const auto& svc : s.services) {
    known.insert("service." + svc.name + ".node_port");
    known.insert("service." + svc.name + ".endpoints");
  }
  auto check = [&](const std::string& text, const std::string& where) {
    for (const auto& n : template_names(text, source + ": " + where))
      if (!known.count(n))
        throw input_error(source + ": " + where,
                          "a known placeholder, not '{{" + n + "}}' (see docs/your-software.md)");
  };
  for (size_t k = 0; k < e.argv.size(); ++k)
    check(e.argv[k], at + "/argv/" + std::to_string(k));
  for (const auto& [name, value] : e.env)
    check(value, at + "/env/" + name);
  // Sections may span lines: the template is checked whole (errors name its line).
  std::string joined;
  for (const auto& line : e.config)
    joined += line + "\n";
  check(joined, at + "/config");
  for (size_t k = 0; k < e.reload.command.size(); ++k)
    check(e.reload.command[k], at + "/reload/command/" + std::to_string(k));
  check(e.sent_bytes_log, at + "/sent_bytes_log");
  for (size_t k = 0; k < e.metrics_command.size(); ++k)
    check(e.metrics_command[k], at + "/metrics_command/" + std::to_string(k));
}

void check_exec_programs(const scenario& s, const std::string& source) {
  for (size_t i = 0; i < s.backends.size(); ++i)
    if (s.backends[i].kind == backend_kind::exec)
      check_placeholders(s.backends[i].exec, "/backends/" + std::to_string(i) + "/exec", s, {},
                         source);
  if (s.proxy && s.proxy->mode == proxy_mode::exec)
    check_placeholders(s.proxy->exec, "/proxy/exec", s, {}, source);
  for (size_t i = 0; i < s.clients.size(); ++i)
    if (s.clients[i].kind == client_kind::exec)
      check_placeholders(s.clients[i].exec, "/clients/" + std::to_string(i) + "/exec", s,
                         {"listen_port", "target", "target_address", "target_port"}, source);
}

// Cross-field checks: names are unique and every reference resolves.
void check_references(const scenario& s, const std::string& source) {
  auto fail = [&](const std::string& where, const std::string& what) {
    throw input_error(source + ": " + where, what);
  };
  std::set<std::string> backends, services, groups;
  // The lab's address plan bounds what it can hold; say so here, before anything is built.
  if (s.backends.size() > limits::max_backends)
    fail("/backends",
         "at most " + std::to_string(limits::max_backends) +
             " backends (one port each on the node's bridge, which holds 1,024); there are " +
             std::to_string(s.backends.size()));
  size_t client_addresses = 0;
  for (const auto& c : s.clients)
    client_addresses += c.arrival == arrival::heartbeat ? c.checkers : 1;
  if (client_addresses > limits::max_client_addresses)
    fail("/clients", "at most " + std::to_string(limits::max_client_addresses) +
                         " client addresses (one per group, one per heartbeat checker); these "
                         "groups need " +
                         std::to_string(client_addresses));
  for (size_t i = 0; i < s.backends.size(); ++i)
    if (!backends.insert(s.backends[i].name).second)
      fail("/backends/" + std::to_string(i) + "/name",
           "a unique backend name; '" + s.backends[i].name + "' is used twice");
  std::set<uint16_t> node_ports;
  for (size_t i = 0; i < s.services.size(); ++i) {
    const auto& svc = s.services[i];
    std::string at = "/services/" + std::to_string(i);
    if (!services.insert(svc.name).second)
      fail(at + "/name", "a unique service name; '" + svc.name + "' is used twice");
    if (!node_ports.insert(svc.node_port).second)
      fail(at + "/node_port", "a node_port not used by another service");
    for (size_t k = 0; k < svc.endpoints.size(); ++k)
      if (!backends.count(svc.endpoints[k]))
        fail(at + "/endpoints/" + std::to_string(k),
             "the name of a backend in /backends; '" + svc.endpoints[k] + "' is not one");
    if (svc.remote.count > 0 && !backends.count(svc.remote.stand_in))
      fail(at + "/remote_endpoints/stand_in",
           "the name of a backend in /backends; '" + svc.remote.stand_in + "' is not one");
  }
  // Each stand-in answers for one aligned block of the remote range (lab/topology.hpp).
  std::map<std::string, size_t> remote_by_stand_in;
  for (const auto& svc : s.services)
    if (svc.remote.count > 0) remote_by_stand_in[svc.remote.stand_in] += svc.remote.count;
  size_t remote_block_total = 0;
  for (const auto& [stand_in, count] : remote_by_stand_in)
    remote_block_total += std::bit_ceil(count);
  if (remote_block_total > limits::max_remote_endpoints)
    fail("/services", "at most " + std::to_string(limits::max_remote_endpoints) +
                          " remote endpoint addresses (198.19.0.0/16; each stand-in's total "
                          "rounded up to a power of two); these services need " +
                          std::to_string(remote_block_total));
  for (size_t i = 0; i < s.clients.size(); ++i) {
    const auto& c = s.clients[i];
    std::string at = "/clients/" + std::to_string(i);
    if (!groups.insert(c.name).second)
      fail(at + "/name", "a unique client group name; '" + c.name + "' is used twice");
    if (!c.target_service.empty() && !services.count(c.target_service))
      fail(at + "/target_service",
           "the name of a service in /services; '" + c.target_service + "' is not one");
  }
  for (size_t i = 0; i < s.clients.size(); ++i) {
    const auto& c = s.clients[i];
    if (c.target_client.empty()) continue;
    std::string at = "/clients/" + std::to_string(i) + "/target_client";
    auto it = std::find_if(s.clients.begin(), s.clients.end(),
                           [&](const auto& o) { return o.name == c.target_client; });
    if (it == s.clients.end() || it->kind != client_kind::exec || it->listen_port == 0)
      fail(at,
           "the name of an exec client with a listen_port; '" + c.target_client + "' is not one");
    // Its address is on its own side: the clients' link, or the node's loopback.
    if (it->from != c.from)
      fail(at, "a client with the same 'from' as this one; '" + c.target_client +
                   "' runs in the other namespace");
  }
  check_exec_programs(s, source);
  if (!s.services.empty() && !s.proxy)
    fail("/proxy", "a proxy (the services need one to reach their backends)");
  for (size_t i = 0; i < s.timeline.size(); ++i) {
    const auto& e = s.timeline[i];
    std::string at = "/timeline/" + std::to_string(i);
    if (e.at_ms > s.duration_ms)
      fail(at + "/at_ms", "a time within duration_ms (" + std::to_string(s.duration_ms) + ")");
    bool on_service = e.action == event_action::set_endpoints;
    bool on_clients =
        e.action == event_action::start_clients || e.action == event_action::stop_clients;
    const auto& names = on_service ? services : on_clients ? groups : backends;
    if (!names.count(e.target))
      fail(at + "/target", std::string("the name of a ") +
                               (on_service   ? "service"
                                : on_clients ? "client group"
                                             : "backend") +
                               "; '" + e.target + "' is not one");
    if (!on_service && !on_clients) {
      const auto& b = *std::find_if(s.backends.begin(), s.backends.end(),
                                    [&](const auto& x) { return x.name == e.target; });
      if (b.kind == backend_kind::exec &&
          (e.action == event_action::close_listener || e.action == event_action::reset_all))
        fail(at + "/action", "a fault that applies to a program (kill, freeze, resume, vanish, "
                             "restart); '" +
                                 std::string(name_of(e.action)) +
                                 "' needs a built-in backend's own "
                                 "sockets, and '" +
                                 e.target + "' is an exec backend");
    }
    if (on_clients) {
      const auto& c = *std::find_if(s.clients.begin(), s.clients.end(),
                                    [&](const auto& x) { return x.name == e.target; });
      if (c.kind == client_kind::exec)
        fail(at + "/target", "a built-in client group; exec clients run for the whole run");
    }
    if (!on_service && !e.endpoints.empty())
      fail(at + "/endpoints", "no endpoints (only set-endpoints takes them)");
    for (size_t k = 0; k < e.endpoints.size(); ++k)
      if (!backends.count(e.endpoints[k]))
        fail(at + "/endpoints/" + std::to_string(k),
             "the name of a backend; '" + e.endpoints[k] + "' is not one");
  }
}

size_t line_of(const std::string& text, size_t byte, size_t& column) {
  size_t line = 1, last_nl = 0;
  for (size_t i = 0; i < std::min(byte, text.size()); ++i)
    if (text[i] == '\n') {
      ++line;
      last_nl = i + 1;
    }
  column = byte >= last_nl ? byte - last_nl : 0;
  return line;
}

} // namespace

// Rejects a key repeated in one object while parsing: nlohmann keeps the last silently, so
// "duration_ms": 1000, "duration_ms": 3600000 would start a one-hour run.
class duplicate_key_check {
public:
  explicit duplicate_key_check(const std::string& source) : source_(source) {}

  bool operator()(int, json::parse_event_t event, json& parsed) {
    using event_t = json::parse_event_t;
    switch (event) {
    case event_t::object_start:
    case event_t::array_start:
      element_starts();
      frames_.push_back({event == event_t::array_start, {}, {}, -1});
      break;
    case event_t::object_end:
    case event_t::array_end:
      if (!frames_.empty()) frames_.pop_back();
      break;
    case event_t::key: {
      frame& f = frames_.back();
      const auto& key = parsed.get_ref<const std::string&>();
      if (!f.keys.insert(key).second) {
        pointer at;
        for (const auto& outer : frames_)
          if (&outer != &f)
            at = outer.is_array ? at / static_cast<size_t>(outer.index) : at / outer.key;
        throw input_error(source_ + ": " + (at / key).to_string(),
                          "each key once per object ('" + printable(key, 80) +
                              "' appears again; JSON readers disagree on which one counts)");
      }
      f.key = key;
      break;
    }
    case event_t::value:
      element_starts();
      break;
    }
    return true;
  }

private:
  struct frame {
    bool is_array = false;
    std::set<std::string> keys;
    std::string key; // the member being read, for the path
    long long index = -1;
  };
  void element_starts() {
    if (!frames_.empty() && frames_.back().is_array) ++frames_.back().index;
  }
  const std::string& source_;
  std::vector<frame> frames_;
};

scenario parse_scenario(const std::string& text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text, duplicate_key_check(source));
  } catch (const json::parse_error& e) {
    size_t column = 0;
    size_t line = line_of(text, e.byte, column);
    std::string msg = e.what();
    auto pos = msg.find("syntax error");
    throw input_error(source + ":" + std::to_string(line) + ":" + std::to_string(column),
                      "expected valid JSON (" + (pos == std::string::npos ? msg : msg.substr(pos)) +
                          ")");
  } catch (const json::out_of_range& e) {
    // A number too large for a double (1e888): found by fuzzing, it escaped as out_of_range.406.
    std::string msg = e.what();
    auto pos = msg.find("number overflow");
    throw input_error(source, "expected valid JSON with numbers a double can hold (" +
                                  (pos == std::string::npos ? msg : msg.substr(pos)) + ")");
  }
  object_reader r(doc, pointer(), source);
  scenario s;
  s.source = source;
  r.name("name", s.name);
  r.string("description", s.description);
  if (r.find("$schema")) {
    std::string ignored;
    r.string("$schema", ignored);
  }
  r.integer("duration_ms", s.duration_ms, 1, 3600 * 1000, true);
  r.integer("sample_interval_ms", s.sample_interval_ms, 1, 60000);
  r.integer("drain_ms", s.drain_ms, 0, 600000);
  if (const json* seed = r.find("seed")) {
    if (!seed->is_number_unsigned() && !(seed->is_number_integer() && seed->get<long long>() >= 0))
      r.fail(r.at("seed"), "expected a non-negative integer, got " +
                               (seed->is_number() ? seed->dump() : type_name(*seed)));
    s.seed = seed->get<uint64_t>();
  }
  if (const json* topo = r.find("topology")) {
    object_reader t(*topo, r.at("topology"), source);
    t.choice("kind", s.topology.kind);
    t.finish();
  }
  if (const json* sys = r.find("sysctls")) {
    object_reader roles(*sys, r.at("sysctls"), source);
    for (const auto& role : {"clients", "node", "pods"}) {
      const json* m = roles.find(role);
      if (!m) continue;
      pointer rp = r.at("sysctls") / role;
      if (!m->is_object()) roles.fail(rp, "expected an object of sysctl keys to values");
      for (auto it = m->begin(); it != m->end(); ++it) {
        if (it.key().rfind("net.", 0) != 0 || it.key().size() > max_name_bytes ||
            it.key().find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789._-") != std::string::npos)
          roles.fail(rp / it.key(), "a per-network-namespace sysctl key starting with 'net.' "
                                    "(letters, digits, '.', '_', '-'; at most " +
                                        std::to_string(max_name_bytes) + " bytes)");
        if (it->is_number_integer())
          s.sysctls[role][it.key()] = std::to_string(it->get<long long>());
        else if (it->is_string() &&
                 it->get_ref<const std::string&>().size() <= max_sysctl_value_bytes)
          s.sysctls[role][it.key()] = it->get<std::string>();
        else if (it->is_string())
          roles.fail(rp / it.key(), "a value of at most " + std::to_string(max_sysctl_value_bytes) +
                                        " bytes (it has " +
                                        std::to_string(it->get_ref<const std::string&>().size()) +
                                        ")");
        else
          roles.fail(rp / it.key(), "expected an integer or a string, got " + type_name(*it));
      }
    }
    roles.finish();
  }
  if (const json* px = r.find("proxy")) s.proxy = read_proxy(*px, r.at("proxy"), source);
  r.array("services", [&](const json& v, const pointer& p) {
    s.services.push_back(read_service(v, p, source));
  });
  r.array("backends", [&](const json& v, const pointer& p) {
    s.backends.push_back(read_backend(v, p, source));
  });
  r.array("clients",
          [&](const json& v, const pointer& p) { s.clients.push_back(read_client(v, p, source)); });
  r.array("timeline",
          [&](const json& v, const pointer& p) { s.timeline.push_back(read_event(v, p, source)); });
  r.array("loss",
          [&](const json& v, const pointer& p) { s.loss.push_back(read_loss(v, p, source)); });
  r.array("expectations", [&](const json& v, const pointer& p) {
    s.expectations.push_back(read_expectation(v, p, source));
  });
  r.finish();
  check_references(s, source);
  return s;
}

std::vector<std::string> builtin_scenario_names() {
  std::vector<std::string> names;
  for (const auto& b : scenarios::builtin_scenarios())
    names.emplace_back(b.name);
  return names;
}

scenario_source read_scenario_source(const std::string& name_or_path) {
  if (name_or_path.empty())
    throw input_error("scenario ''", "the name of a shipped scenario or a path to a .json file "
                                     "(an empty name is not the default)");
  bool is_path = name_or_path.find('/') != std::string::npos ||
                 (name_or_path.size() > 5 && name_or_path.ends_with(".json"));
  if (!is_path) {
    for (const auto& b : scenarios::builtin_scenarios())
      if (b.name == name_or_path) return {std::string(b.json), "builtin:" + name_or_path};
    std::string names;
    for (const auto& n : builtin_scenario_names())
      names += (names.empty() ? "" : ", ") + n;
    throw input_error("scenario '" + name_or_path + "'",
                      "the name of a shipped scenario (" + names + ") or a path to a .json file");
  }
  return {read_scenario_file(name_or_path), name_or_path};
}

scenario load_scenario(const std::string& name_or_path) {
  auto [text, source] = read_scenario_source(name_or_path);
  return parse_scenario(text, source);
}

std::string read_scenario_file(const std::string& path) {
  // O_NONBLOCK: a FIFO without a writer must not hang the open; only regular files are read, and
  // at most max_scenario_bytes of them (/dev/zero or a huge file would otherwise be read whole).
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd)
    throw input_error(path, "a readable scenario file (" + errno_message("open", errno) + ")");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    throw input_error(path, "a readable scenario file (" + errno_message("fstat", errno) + ")");
  if (S_ISDIR(st.st_mode)) throw input_error(path, "a scenario file, not a directory");
  if (!S_ISREG(st.st_mode))
    throw input_error(path, "a regular scenario file, not a FIFO, socket or device");
  auto too_big = [&](unsigned long long bytes) {
    return input_error(path, "a scenario file of at most " +
                                 std::to_string(max_scenario_bytes >> 20) + " MiB (it has " +
                                 std::to_string(bytes) + " bytes)");
  };
  if (static_cast<unsigned long long>(st.st_size) > max_scenario_bytes) throw too_big(st.st_size);
  std::string text;
  text.resize(max_scenario_bytes + 1);
  size_t used = 0;
  while (used < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw input_error(path, "a readable scenario file (" + errno_message("read", errno) + ")");
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > max_scenario_bytes) throw too_big(used); // it grew while being read
  text.resize(used);
  return text;
}

} // namespace backlog_lab::scenario
