#include "tests/harness/lab/ip_view.hpp"

#include "tests/support/kernel_view.hpp"

#include <sstream>

#include "tests/support/support.hpp"

namespace backlog_lab::testing {

using nlohmann::json;

json ip_json(const lab::netns& ns, std::vector<std::string> args) {
  args.insert(args.begin(), {"ip", "-j"});
  return json::parse(run_ok(ns, args));
}

json find_link(const json& links, const std::string& name) {
  for (const auto& l : links)
    if (l.value("ifname", "") == name) return l;
  return nullptr;
}

std::vector<std::string> inet_addresses(const json& link) {
  std::vector<std::string> out;
  if (link.is_null()) return out;
  for (const auto& a : link.at("addr_info"))
    if (a.at("family") == "inet")
      out.push_back(a.at("local").get<std::string>() + "/" +
                    std::to_string(a.at("prefixlen").get<int>()));
  return out;
}

bool has_flag(const json& link, const std::string& flag) {
  for (const auto& f : link.at("flags"))
    if (f == flag) return true;
  return false;
}

std::map<std::string, std::string> routes(const lab::netns& ns) {
  std::map<std::string, std::string> out;
  for (const auto& r : ip_json(ns, {"route", "show"}))
    out[r.at("dst")] = r.value("gateway", "") + "@" + r.value("dev", "");
  return out;
}

long counter(const lab::netns& ns, const std::string& name) {
  return static_cast<long>(nstat_counter(ns, name).value_or(-1));
}

} // namespace backlog_lab::testing
