#include "harness/scenario/overrides.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

#include "harness/core/error.hpp"
#include "harness/lab/sysctl.hpp"

namespace backlog_lab::scenario {
namespace {

using json = nlohmann::json;

const char* const roles[] = {"clients", "node", "pods"};

std::string where_of(const set_override& a) {
  return "--set " + a.text;
}

// Splits at commas that are outside brackets, braces and double quotes, so `[250,500]` and
// `"a,b"` stay one value.
std::vector<std::string> split_values(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  int depth = 0;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '\\' && i + 1 < text.size()) {
        current += c;
        c = text[++i];
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == ',' && depth == 0) {
      out.push_back(current);
      current.clear();
      continue;
    }
    current += c;
  }
  out.push_back(current);
  return out;
}

json value_of(const std::string& text) {
  json v = json::parse(text, nullptr, false);
  if (v.is_discarded()) return text; // a bare word: the string itself
  return v;
}

} // namespace

set_override parse_set(const std::string& text) {
  set_override a;
  a.text = text;
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw input_error("--set " + text, "KEY=V1,V2,... where KEY is ROLE:net.x.y (a sysctl of "
                                       "clients, node or pods) or a JSON pointer such as "
                                       "/proxy/backlog");
  a.key = text.substr(0, eq);
  std::string values = text.substr(eq + 1);
  if (a.key.front() == '/') {
    try {
      a.pointer = json::json_pointer(a.key).to_string();
    } catch (const json::exception&) {
      throw input_error(where_of(a), "a valid JSON pointer (RFC 6901: /field/index/field, '~0' "
                                     "for '~' and '~1' for '/'), got '" +
                                         a.key + "'");
    }
  } else {
    auto colon = a.key.find(':');
    if (colon == std::string::npos)
      throw input_error(where_of(a), "a key ROLE:net.x.y (a sysctl of clients, node or pods) or "
                                     "a JSON pointer starting with '/', got '" +
                                         a.key + "'");
    a.role = a.key.substr(0, colon);
    a.sysctl = a.key.substr(colon + 1);
    a.pointer = (json::json_pointer("/sysctls") / a.role / a.sysctl).to_string();
    if (std::find(std::begin(roles), std::end(roles), a.role) == std::end(roles))
      throw input_error(where_of(a) + ": " + a.pointer,
                        "a namespace role clients, node or pods before ':', got '" + a.role + "'");
    if (a.sysctl.rfind("net.", 0) != 0 || a.sysctl.size() <= 4)
      throw input_error(where_of(a) + ": " + a.pointer,
                        "a per-network-namespace sysctl key starting with 'net.' after '" + a.role +
                            ":', got '" + a.sysctl + "'");
  }
  for (const auto& v : split_values(values)) {
    if (v.empty())
      throw input_error(where_of(a), "a comma-separated list of values with none empty");
    a.values.push_back(value_of(v));
    a.texts.push_back(v);
  }
  return a;
}

void apply_set(json& doc, const set_override& a, const json& value) {
  if (!a.role.empty()) {
    json& sysctls = doc["sysctls"];
    if (sysctls.is_null()) sysctls = json::object(); // the scenario sets none: a new object
    if (!sysctls.is_object())
      throw input_error(where_of(a) + ": /sysctls", "the scenario's sysctls to be an object");
    json& role = sysctls[a.role];
    if (role.is_null()) role = json::object();
    if (!role.is_object())
      throw input_error(where_of(a) + ": /sysctls/" + a.role,
                        "the scenario's sysctls of '" + a.role + "' to be an object");
    role[a.sysctl] = value;
    return;
  }
  json::json_pointer ptr(a.pointer);
  if (ptr.empty())
    throw input_error(where_of(a), "a pointer to a field, not to the whole scenario");
  json::json_pointer parent = ptr.parent_pointer();
  std::string last = ptr.back();
  bool exists = false;
  try {
    exists = doc.contains(parent);
  } catch (const json::exception&) {
    exists = false; // e.g. a word where an array index belongs
  }
  if (!exists)
    throw input_error(where_of(a) + ": " + parent.to_string(),
                      "a path that exists in the scenario (there is nothing at " +
                          parent.to_string() + ")");
  json& p = doc[parent];
  if (p.is_object()) {
    // A field the file leaves at its default may be set; the reader checks it. A number where
    // the file has a string is a version or a name as written: "1.20", not 1.2.
    if (value.is_number() && p.contains(last) && p[last].is_string())
      p[last] = a.texts.at(static_cast<size_t>(&value - a.values.data()));
    else
      p[last] = value;
  } else if (p.is_array()) {
    size_t index = 0;
    bool numeric = !last.empty() && last.find_first_not_of("0123456789") == std::string::npos &&
                   (last.size() == 1 || last[0] != '0');
    if (numeric) index = std::stoul(last);
    if (!numeric || index >= p.size())
      throw input_error(where_of(a) + ": " + ptr.to_string(),
                        "an index of an existing element (" + parent.to_string() + " has " +
                            std::to_string(p.size()) + "), got '" + last + "'");
    p[index] = value;
  } else {
    throw input_error(where_of(a) + ": " + ptr.to_string(), "a path inside an object or array (" +
                                                                parent.to_string() + " is " +
                                                                std::string(p.type_name()) + ")");
  }
}

std::vector<set_override> parse_sets(const std::vector<std::string>& sets, sysctl_check check) {
  std::vector<set_override> out;
  std::set<std::string> pointers;
  for (const auto& text : sets) {
    set_override a = parse_set(text);
    if (!pointers.insert(a.pointer).second)
      throw input_error(where_of(a), "each key in one --set only (" + a.key + " is set twice)");
    if (!a.role.empty() && check == sysctl_check::this_kernel) {
      std::string path;
      try {
        path = lab::sysctl_path(a.sysctl);
      } catch (const std::exception& e) {
        throw input_error(where_of(a) + ": " + a.pointer, e.what());
      }
      std::error_code ec;
      if (!std::filesystem::exists(path, ec))
        throw input_error(where_of(a) + ": " + a.pointer,
                          "a sysctl this kernel has (" + path + " does not exist)");
    }
    out.push_back(std::move(a));
  }
  return out;
}

scenario parse_with_sets(const json& doc, const std::string& source, const set_choice& choice) {
  json with = doc;
  std::string sets;
  for (const auto& [o, v] : choice) {
    apply_set(with, *o, *v);
    sets += (sets.empty() ? "--set " : " --set ") + o->key + "=" + value_text(*v);
  }
  try {
    // A --set value taken as a string may hold bytes that are not UTF-8 (found by fuzzing:
    // dump() threw type_error 316); they become U+FFFD and the reader judges the result.
    return parse_scenario(with.dump(-1, ' ', false, json::error_handler_t::replace), source);
  } catch (const input_error& e) {
    if (choice.size() > 1)
      for (const auto& one : choice)
        parse_with_sets(doc, source, {one}); // throws the error of a value wrong on its own
    throw input_error(sets.empty() ? e.where() : sets + ": " + e.where(), e.expected());
  }
}

scenario apply_sets(const scenario_source& s, const std::vector<std::string>& sets) {
  // The reader reports syntax errors with line and column; run it once on the text as written.
  scenario as_written = parse_scenario(s.text, s.source);
  if (sets.empty()) return as_written;
  std::vector<set_override> overrides = parse_sets(sets, sysctl_check::this_kernel);
  set_choice choice;
  for (const auto& o : overrides) {
    if (o.values.size() != 1)
      throw input_error(where_of(o), "one value (a list of values is for `backlog-lab sweep`)");
    choice.emplace_back(&o, &o.values.front());
  }
  return parse_with_sets(json::parse(s.text), s.source, choice);
}

std::string value_text(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

} // namespace backlog_lab::scenario
