#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness/core/error.hpp"
#include "harness/lab/link.hpp"
#include "tests/harness/lab/ip_view.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::lab {
namespace {

using nlohmann::json;

using testing::find_link;
using testing::has_flag;
using testing::inet_addresses;
using testing::ip_json;

TEST(link, veth_ends_land_directly_in_their_namespaces) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns a = netns::create("a");
  netns b = netns::create("b");
  rtnl_socket sa(a);
  sa.create_veth("bl-ta", b, "bl-tb", "02:62:6c:00:01:01", "02:62:6c:00:01:02");
  json in_a = ip_json(a, {"link", "show"});
  json in_b = ip_json(b, {"link", "show"});
  ASSERT_FALSE(find_link(in_a, "bl-ta").is_null()) << in_a.dump();
  EXPECT_TRUE(find_link(in_a, "bl-tb").is_null());
  ASSERT_FALSE(find_link(in_b, "bl-tb").is_null()) << in_b.dump();
  EXPECT_TRUE(find_link(in_b, "bl-ta").is_null());
  EXPECT_EQ(find_link(in_a, "bl-ta").at("address"), "02:62:6c:00:01:01");
  EXPECT_EQ(find_link(in_b, "bl-tb").at("address"), "02:62:6c:00:01:02");
  // The kernel says each end's peer lives in another namespace.
  EXPECT_TRUE(find_link(in_a, "bl-ta").contains("link_netnsid"));
  for (const auto& name : testing::current_links()) {
    EXPECT_NE(name, "bl-ta");
    EXPECT_NE(name, "bl-tb");
  }
  auto details = testing::run_ok(a, {"ip", "-d", "link", "show", "bl-ta"});
  EXPECT_NE(details.find("numtxqueues 1 numrxqueues 1"), std::string::npos) << details;
}

TEST(link, addresses_routes_and_state_match_ip) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns a = netns::create("a");
  netns b = netns::create("b");
  create_veth(a, "bl-ta", b, "bl-tb");
  add_address(a, "bl-ta", "198.51.100.1/24");
  add_address(a, "bl-ta", "198.51.100.7/24");
  add_address(b, "bl-tb", "198.51.100.2/24");
  set_link_up(a, "bl-ta");
  set_link_up(b, "bl-tb");
  add_route(b, "default", "198.51.100.1");
  add_route(b, "203.0.113.0/24", "198.51.100.7");

  json link_a = find_link(ip_json(a, {"addr", "show"}), "bl-ta");
  EXPECT_EQ(inet_addresses(link_a),
            (std::vector<std::string>{"198.51.100.1/24", "198.51.100.7/24"}));
  EXPECT_TRUE(has_flag(link_a, "UP"));
  auto via = testing::routes(b);
  EXPECT_EQ(via["default"], "198.51.100.1@bl-tb");
  EXPECT_EQ(via["203.0.113.0/24"], "198.51.100.7@bl-tb");
  EXPECT_EQ(via["198.51.100.0/24"], "@bl-tb");

  delete_address(a, "bl-ta", "198.51.100.7/24");
  EXPECT_EQ(inet_addresses(find_link(ip_json(a, {"addr", "show"}), "bl-ta")),
            (std::vector<std::string>{"198.51.100.1/24"}));
  set_link_up(a, "bl-ta", false);
  EXPECT_FALSE(has_flag(find_link(ip_json(a, {"link", "show"}), "bl-ta"), "UP"));
}

TEST(link, bridge_ports_and_pinned_neighbours_match_ip) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns a = netns::create("a");
  netns b = netns::create("b");
  rtnl_socket sa(a);
  sa.create_bridge("bl-br");
  sa.create_veth("bl-ta", b, "bl-tb");
  sa.set_master("bl-ta", "bl-br");
  sa.set_link_up("bl-br");
  sa.add_address("bl-br", "203.0.113.1/24");
  json port = find_link(ip_json(a, {"link", "show"}), "bl-ta");
  EXPECT_EQ(port.value("master", ""), "bl-br") << port.dump();
  EXPECT_EQ(sa.link_index("bl-br"), find_link(ip_json(a, {"link", "show"}), "bl-br").at("ifindex"));

  sa.pin_neighbour("bl-br", "203.0.113.10", "02:62:6c:00:00:0a");
  json neigh = ip_json(a, {"neigh", "show", "dev", "bl-br"});
  ASSERT_EQ(neigh.size(), 1u) << neigh.dump();
  EXPECT_EQ(neigh[0].at("dst"), "203.0.113.10");
  EXPECT_EQ(neigh[0].at("lladdr"), "02:62:6c:00:00:0a");
  EXPECT_EQ(neigh[0].at("state"), json::array({"PERMANENT"}));
  sa.delete_neighbour("bl-br", "203.0.113.10");
  EXPECT_TRUE(ip_json(a, {"neigh", "show", "dev", "bl-br"}).empty());
}

TEST(link, kernel_errors_name_operation_link_namespace_and_errno) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns a = netns::create("alpha");
  netns b = netns::create("beta");
  auto message_of = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const lab_error& e) {
      return e.what();
    }
    return "no lab_error";
  };
  std::string missing = message_of([&] { add_address(a, "bl-missing", "198.51.100.1/24"); });
  EXPECT_NE(missing.find("bl-missing"), std::string::npos) << missing;
  EXPECT_NE(missing.find("'alpha'"), std::string::npos) << missing;
  EXPECT_NE(missing.find("No such device"), std::string::npos) << missing;

  create_veth(a, "bl-ta", b, "bl-tb");
  std::string twice = message_of([&] { create_veth(a, "bl-ta", b, "bl-tc"); });
  EXPECT_NE(twice.find("creating veth 'bl-ta'"), std::string::npos) << twice;
  EXPECT_NE(twice.find("File exists"), std::string::npos) << twice;
  EXPECT_NE(twice.find("errno 17"), std::string::npos) << twice;

  std::string route = message_of([&] { add_route(a, "default", "192.0.2.1"); });
  EXPECT_NE(route.find("adding route default via 192.0.2.1 in namespace 'alpha'"),
            std::string::npos)
      << route;
  EXPECT_NE(route.find("unreachable"), std::string::npos) << route;

  EXPECT_THROW(add_address(a, "bl-ta", "198.51.100.300/24"), input_error);
  EXPECT_THROW(add_address(a, "bl-ta", "198.51.100.1/33"), input_error);
  EXPECT_THROW(add_route(a, "nowhere", "198.51.100.1"), input_error);
  EXPECT_THROW(rtnl_socket(a).pin_neighbour("bl-ta", "198.51.100.9", "02:xx"), input_error);
}

} // namespace
} // namespace backlog_lab::lab
