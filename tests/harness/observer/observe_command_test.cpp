// `backlog-lab observe`: options parsed in-process, and runs against lab namespaces.
// (Lives with the observer tests: harness/cli/observe_command.cpp is owned with the observer.)
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "harness/cli/observe_command.hpp"
#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/lab/process.hpp"
#include "harness/observer/census.hpp"
#include "tests/harness/observer/busy_namespace.hpp"
#include "tests/harness/observer/tree_reference.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::cli {
namespace {

// CLI11's TApp pattern: parse a vector of arguments into a fresh app.
struct parsed {
  CLI::App app{"test"};
  observe_options options;
  CLI::App* sub = nullptr;
  parsed() {
    sub = app.add_subcommand("observe");
    add_observe_options(*sub, options);
  }
  void parse(std::vector<std::string> args) {
    args.insert(args.begin(), "observe");
    std::reverse(args.begin(), args.end());
    app.parse(args);
  }
};

TEST(observe_options, defaults_and_flags) {
  parsed p;
  p.parse({});
  EXPECT_FALSE(p.options.pid);
  EXPECT_TRUE(p.options.netns_path.empty());
  EXPECT_FALSE(p.options.json || p.options.extended || p.options.counters ||
               p.options.listeners_only || p.options.demo);

  parsed q;
  q.parse({"--json", "-e", "--counters", "--listeners", "--pid", "1"});
  EXPECT_TRUE(q.options.json);
  EXPECT_TRUE(q.options.extended);
  EXPECT_TRUE(q.options.counters);
  EXPECT_TRUE(q.options.listeners_only);
  EXPECT_EQ(q.options.pid, 1);

  parsed r;
  r.parse({"--netns", "/proc/self/ns/net", "--extended"});
  EXPECT_EQ(r.options.netns_path, "/proc/self/ns/net");
  EXPECT_TRUE(r.options.extended);

  parsed d;
  d.parse({"--demo", "--json"});
  EXPECT_TRUE(d.options.demo);
}

TEST(observe_options, bad_input_is_rejected) {
  EXPECT_THROW(parsed().parse({"--pid", "0"}), CLI::ValidationError);
  EXPECT_THROW(parsed().parse({"--pid", "-3"}), CLI::ValidationError);
  EXPECT_THROW(parsed().parse({"--pid", "abc"}), CLI::ParseError);
  EXPECT_THROW(parsed().parse({"--netns", "/no/such/namespace"}), CLI::ValidationError);
  EXPECT_THROW(parsed().parse({"--pid", "1", "--netns", "/proc/self/ns/net"}), CLI::ExcludesError);
  EXPECT_THROW(parsed().parse({"--demo", "--pid", "1"}), CLI::ExcludesError);
  EXPECT_THROW(parsed().parse({"--no-such-flag"}), CLI::ExtrasError);
}

TEST(observe_options, setup_sets_the_action_only_when_observe_is_chosen) {
  CLI::App app{"backlog-lab"};
  std::function<int()> action;
  setup_observe(app, action);
  app.add_subcommand("other");
  app.parse(std::vector<std::string>{"other"});
  EXPECT_FALSE(action);
  CLI::App app2{"backlog-lab"};
  setup_observe(app2, action);
  app2.parse(std::vector<std::string>{"--json", "observe"});
  EXPECT_TRUE(action);
}

// A namespace with one listener holding two un-accepted CLOSE-WAIT children.
struct small_lab {
  lab::netns ns = lab::netns::create("observe-cli");
  net::io_context io;
  tcp::acceptor acceptor{io};
  small_lab() {
    lab::netns_scope in(ns);
    acceptor.open(tcp::v4());
    acceptor.bind({net::ip::address_v4::loopback(), 0});
    acceptor.listen(1);
    for (int i = 0; i < 2; ++i) {
      tcp::socket c(io);
      c.connect(acceptor.local_endpoint());
      net::write(c, net::buffer(std::string(9, 'x')));
    }
  }
};

// What `observe` printed with `o`; empty (and a failure) unless it exited 0.
std::string observe_output(const observe_options& o) {
  std::ostringstream out;
  int code = run_observe(o, out);
  EXPECT_EQ(code, 0);
  return code == 0 ? out.str() : std::string();
}

TEST(observe_run, json_of_another_namespace_by_path) {
  BACKLOG_LAB_REQUIRE_LAB();
  small_lab lab;
  observe_options o;
  o.netns_path = lab.ns.proc_path();
  o.json = true;
  o.counters = true;
  const std::string printed = observe_output(o);
  ASSERT_FALSE(printed.empty());
  auto j = nlohmann::json::parse(printed);
  EXPECT_EQ(j["namespace"]["inode"], lab.ns.inode());
  const auto& listeners = j["census"]["listeners"];
  ASSERT_EQ(listeners.size(), 1u);
  const auto& l = listeners[0];
  EXPECT_EQ(l["local"], "127.0.0.1:" + std::to_string(lab.acceptor.local_endpoint().port()));
  EXPECT_EQ(l["accept_queue"], 2);
  EXPECT_EQ(l["backlog"], 1);
  EXPECT_EQ(l["full"], true);
  EXPECT_EQ(l["children"]["CLOSE-WAIT"], 2);
  EXPECT_EQ(l["unaccepted"]["close_wait"], 2);
  EXPECT_EQ(l["unaccepted"]["close_wait_bytes"], 20);
  EXPECT_EQ(l.at("unaccepted").at("queued").at(0).at("recv_q"), 10); // at(): a failure, not UB
  EXPECT_EQ(j["census"]["sockets"].size(), 5u); // listener, 2 children, 2 clients
  EXPECT_EQ(j["counters"]["TcpPassiveOpens"], 2);
}

TEST(observe_run, text_of_a_process_namespace_by_pid) {
  BACKLOG_LAB_REQUIRE_LAB();
  small_lab lab;
  // A process living in the lab namespace: observe --pid finds the namespace through it.
  auto child = lab::child_process::spawn(&lab.ns, [] {
    ::pause();
    return 0;
  });
  // The child enters the namespace after fork: wait (bounded) until it is there.
  for (int i = 0; i < 200 && lab::netns::of_pid(child.pid()).inode() != lab.ns.inode(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(lab::netns::of_pid(child.pid()).inode(), lab.ns.inode());
  observe_options o;
  o.pid = child.pid();
  o.extended = true;
  const std::string printed = observe_output(o);
  ASSERT_FALSE(printed.empty());
  const std::string text = printed;
  const std::string port = std::to_string(lab.acceptor.local_endpoint().port());
  EXPECT_NE(text.find("LISTEN     2      1      127.0.0.1:" + port), std::string::npos) << text;
  EXPECT_NE(text.find("CLOSE-WAIT 10     0      127.0.0.1:" + port), std::string::npos) << text;
  EXPECT_NE(text.find("accept_queue 2 / backlog 1  FULL"), std::string::npos) << text;
  EXPECT_NE(text.find("ino:0 -->"), std::string::npos) << text;
  child.kill_and_wait();
}

TEST(observe_run, listeners_only_skips_the_socket_list) {
  BACKLOG_LAB_REQUIRE_LAB();
  small_lab lab;
  observe_options o;
  o.netns_path = lab.ns.proc_path();
  o.listeners_only = true;
  o.json = true;
  const std::string printed = observe_output(o);
  ASSERT_FALSE(printed.empty());
  auto j = nlohmann::json::parse(printed);
  EXPECT_FALSE(j["census"].contains("sockets"));
  EXPECT_EQ(j["census"]["socket_count"], 5);
  EXPECT_EQ(j["census"]["listeners"][0]["accept_queue"], 2);
}

// `observe --json` streams its document (two walks of the namespace, nothing kept per socket);
// on a quiet namespace it must print exactly what the tree it replaced printed.
TEST(observe_run, streamed_json_equals_the_tree_it_replaced_byte_for_byte) {
  BACKLOG_LAB_REQUIRE_LAB();
  testing::busy_namespace busy;
  for (bool listeners_only : {false, true}) {
    observe_options o;
    o.netns_path = busy.ns.proc_path();
    o.json = true;
    o.listeners_only = listeners_only;
    const std::string printed = observe_output(o);
    ASSERT_FALSE(printed.empty());

    utsname u{};
    ASSERT_EQ(::uname(&u), 0);
    const auto c = observer::census_reader(&busy.ns).read();
    nlohmann::json reference{{"format_version", 1},
                             {"kernel", u.release},
                             {"namespace", {{"source", o.netns_path}, {"inode", busy.ns.inode()}}},
                             {"census", observer::reference::tree(c, !listeners_only)}};
    EXPECT_EQ(printed, reference.dump(2) + "\n") << "listeners_only " << listeners_only;
  }
}

TEST(observe_run, json_with_counters_parses_and_lists_them_in_order) {
  BACKLOG_LAB_REQUIRE_LAB();
  small_lab lab;
  observe_options o;
  o.netns_path = lab.ns.proc_path();
  o.json = true;
  o.counters = true;
  const std::string printed = observe_output(o);
  ASSERT_FALSE(printed.empty());
  const auto j = nlohmann::json::parse(printed);
  EXPECT_EQ(printed, j.dump(2) + "\n"); // keys in dump()'s order everywhere
  EXPECT_GT(j.at("counters").size(), 10u);
}

} // namespace
} // namespace backlog_lab::cli
