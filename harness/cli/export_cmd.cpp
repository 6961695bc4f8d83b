#include "harness/cli/export_cmd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "harness/cli/netns_options.hpp"
#include "harness/core/error.hpp"
#include "harness/core/unique_fd.hpp"
#include "harness/exporter/collector.hpp"
#include "harness/exporter/server.hpp"

namespace backlog_lab::cli {
namespace {

int serve(const export_options& o);

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<long>(seconds * 1000));
}

net::awaitable<void> refresh_textfile(net::io_context& io, exporter::metrics_server& server,
                                      std::string path, std::chrono::milliseconds every) {
  net::steady_timer timer(io);
  for (;;) {
    auto text = co_await server.scrape();
    if (text) {
      try {
        write_textfile(path, *text);
      } catch (const std::exception& e) {
        std::cerr << "backlog-lab export: " << e.what() << '\n';
      }
    }
    if (every.count() <= 0) co_return;
    timer.expires_after(every);
    boost::system::error_code ec;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
  }
}

} // namespace

tcp::endpoint parse_listen_address(const std::string& text) {
  const std::string expected = "ADDR:PORT with a numeric address (IPv6 in brackets) and a port "
                               "0-65535, e.g. 127.0.0.1:9816, [::1]:9816 or :9816 (every IPv4 "
                               "address); got '" +
                               text + "'";
  auto colon = text.rfind(':');
  if (colon == std::string::npos) throw input_error("--listen", expected);
  std::string host = text.substr(0, colon);
  std::string port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.find(':') == std::string::npos) throw input_error("--listen", expected);
  } else if (host.find(':') != std::string::npos) {
    throw input_error("--listen", expected); // IPv6 needs brackets
  }
  if (host.empty()) host = "0.0.0.0";
  unsigned long p = 0;
  std::size_t used = 0;
  try {
    p = std::stoul(port, &used);
  } catch (const std::exception&) {
    throw input_error("--listen", expected);
  }
  if (used != port.size() || p > 65535 || port.empty() || port[0] == '+' || port[0] == '-')
    throw input_error("--listen", expected);
  boost::system::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) throw input_error("--listen", expected);
  return {address, static_cast<unsigned short>(p)};
}

void write_textfile(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text << std::flush;
    return;
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) throw lab_error(errno_message("cannot create " + tmp, errno));
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      fd.reset();
      ::unlink(tmp.c_str());
      throw lab_error(errno_message("cannot write " + tmp, err));
    }
    done += static_cast<std::size_t>(n);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw lab_error(errno_message("cannot rename " + tmp + " to " + path, err));
  }
}

void setup_export(CLI::App& app, std::function<int()>& action) {
  auto o = std::make_shared<export_options>();
  CLI::App* sub = app.add_subcommand(
      "export", "Serve accept queues, listen drops and un-accepted connections as Prometheus "
                "metrics (--listen) or write them for node_exporter's textfile collector "
                "(--textfile); read-only");
  auto* listen = sub->add_option("--listen", o->listen,
                                 "Serve GET /metrics at ADDR:PORT (e.g. 127.0.0.1:9816, :9816)");
  auto* textfile = sub->add_option("--textfile", o->textfile,
                                   "Write the metrics to PATH atomically (a *.prom file for "
                                   "node_exporter's textfile collector; - for stdout)");
  sub->add_option("--interval", o->interval_s,
                  "Rewrite the textfile every SECONDS (default: once, then exit unless "
                  "--listen)")
      ->check(CLI::NonNegativeNumber);
  auto* all = sub->add_flag("--all-netns", o->all_netns,
                            "Every network namespace of the machine (found through "
                            "/proc/*/ns/net; on a Kubernetes node, every pod)");
  auto target = add_netns_options(*sub, o->pid, o->netns_path, "Export");
  all->excludes(target.pid)->excludes(target.path);
  sub->add_option("--max-connections", o->max_connections,
                  "HTTP connections served at once (default 32); at the limit the oldest idle "
                  "one is closed")
      ->check(CLI::Range(1, 10000));
  sub->add_option("--request-timeout", o->request_timeout_s,
                  "Seconds a client has to send a whole request head (default 5)")
      ->check(CLI::Range(0.05, 3600.0));
  sub->add_option("--scrape-timeout", o->scrape_timeout_s,
                  "Seconds a scrape waits for a collection before answering 503 (default 10)")
      ->check(CLI::Range(0.05, 3600.0));
  sub->callback([o, sub, listen, textfile, &action] {
    if (listen->count() == 0 && textfile->count() == 0)
      throw CLI::RequiredError(sub->get_name() + ": --listen or --textfile");
    action = [o] { return run_export(*o); };
  });
}

int run_export(const export_options& o) {
  try {
    return serve(o);
  } catch (const lab_error& e) {
    // Not a lab: the app's generic "lab could not be built" wording would mislead.
    std::cerr << "backlog-lab export: " << e.what() << '\n';
    return static_cast<int>(exit_code::bad_input);
  }
}

namespace {

int serve(const export_options& o) {
  std::optional<tcp::endpoint> at;
  if (!o.listen.empty()) at = parse_listen_address(o.listen);
  exporter::collect_target target{o.pid, o.netns_path, o.all_netns};
  auto collector = std::make_shared<exporter::collector>(target);
  // One collection up front: a missing privilege is an error now, not an empty page later.
  std::string first = collector->collect();
  if (o.all_netns && collector->last_readings().empty())
    throw lab_error("no network namespace could be read (run as root, or with CAP_SYS_ADMIN, "
                    "CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: docs/exporter.md)");
  if (!at) {
    if (o.interval_s <= 0) {
      write_textfile(o.textfile, first);
      return static_cast<int>(exit_code::ok);
    }
  }

  net::io_context io;
  net::signal_set signals(io, SIGINT, SIGTERM);
  exporter::server_limits limits;
  limits.max_connections = o.max_connections;
  limits.request_timeout = to_ms(o.request_timeout_s);
  limits.scrape_timeout = to_ms(o.scrape_timeout_s);
  // Without --listen the server binds nothing: it only runs the textfile's collections.
  exporter::metrics_server server(
      io, at, [collector] { return collector->collect(); }, limits);
  signals.async_wait([&](const boost::system::error_code&, int) {
    server.stop();
    io.stop();
  });
  if (at) {
    auto bound = server.local_endpoint();
    std::string host = bound.address().to_string();
    if (bound.address().is_v6()) host = "[" + host + "]";
    std::cerr << "backlog-lab export: serving http://" << host << ':' << bound.port()
              << "/metrics (" << collector->last_readings().size() << " network namespace"
              << (collector->last_readings().size() == 1 ? "" : "s") << ")" << std::endl;
  }
  if (!o.textfile.empty())
    net::co_spawn(io, refresh_textfile(io, server, o.textfile, to_ms(o.interval_s)), net::detached);
  io.run();
  return static_cast<int>(exit_code::ok);
}

} // namespace

} // namespace backlog_lab::cli
