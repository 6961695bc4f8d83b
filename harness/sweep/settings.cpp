#include "harness/sweep/settings.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/lab/sysctl.hpp"
#include "harness/scenario/reader.hpp"
#include "scenarios/builtin.hpp"

namespace backlog_lab::sweep {
namespace {

using json = nlohmann::json;

const char* const roles[] = {"clients", "node", "pods"};

std::string where_of(const axis& a) {
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

// Applies one combination to a copy of the document and parses it; reader errors are
// re-thrown with the --set values that produced them.
scenario::scenario parse_cell(const plan& p,
                              const std::vector<std::pair<const axis*, const json*>>& choice) {
  json doc = p.document;
  std::string sets;
  for (const auto& [a, v] : choice) {
    apply(doc, *a, *v);
    sets += (sets.empty() ? "--set " : " --set ") + a->key + "=" + value_text(*v);
  }
  try {
    // A --set value taken as a string may hold bytes that are not UTF-8 (found by fuzzing:
    // dump() threw type_error 316); they become U+FFFD and the reader judges the result.
    return scenario::parse_scenario(
        doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), p.source);
  } catch (const input_error& e) {
    throw input_error(sets.empty() ? e.where() : sets + ": " + e.where(), e.expected());
  }
}

} // namespace

axis parse_set(const std::string& text) {
  axis a;
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

void apply(json& doc, const axis& a, const json& value) {
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

std::string cell::label() const {
  std::string out;
  for (const auto& [key, value] : settings)
    out += (out.empty() ? "" : " ") + key + "=" + value_text(value);
  return out;
}

plan make_plan(const scenario_text& s, const std::vector<std::string>& sets, sysctl_check check) {
  plan p;
  p.source = s.source;
  // The reader reports syntax errors with line and column; run it once on the text as written.
  scenario::parse_scenario(s.text, s.source);
  p.document = json::parse(s.text);
  std::set<std::string> keys;
  for (const auto& text : sets) {
    axis a = parse_set(text);
    if (!keys.insert(a.pointer).second)
      throw input_error(where_of(a), "each key in one --set only (" + a.key + " is set twice)");
    if (!a.role.empty() && check == sysctl_check::this_kernel) {
      // A sysctl the kernel lacks would only fail in the first cell's lab; say it now.
      std::error_code ec;
      std::string path;
      try {
        path = lab::sysctl_path(a.sysctl);
      } catch (const std::exception& e) {
        throw input_error(where_of(a) + ": " + a.pointer, e.what());
      }
      if (!std::filesystem::exists(path, ec))
        throw input_error(where_of(a) + ": " + a.pointer,
                          "a sysctl this kernel has (" + path + " does not exist)");
    }
    p.axes.push_back(std::move(a));
  }
  // Each value on its own first, so that an error can name the one --set that is wrong. Fields
  // that depend on each other (mode and preset) may be wrong alone and right together, so an
  // error alone counts only if a combination holding that value fails too.
  std::map<std::pair<const axis*, const json*>, input_error> alone;
  for (const auto& a : p.axes)
    for (const auto& v : a.values)
      try {
        parse_cell(p, {{&a, &v}});
      } catch (const input_error& e) {
        alone.emplace(std::pair{&a, &v}, e);
      }
  std::vector<size_t> at(p.axes.size(), 0);
  for (size_t index = 0;; ++index) {
    std::vector<std::pair<const axis*, const json*>> choice;
    cell c;
    c.index = index;
    for (size_t k = 0; k < p.axes.size(); ++k) {
      choice.push_back({&p.axes[k], &p.axes[k].values[at[k]]});
      c.settings.emplace_back(p.axes[k].key, p.axes[k].values[at[k]]);
    }
    try {
      c.scenario = parse_cell(p, choice);
    } catch (const input_error&) {
      for (const auto& key : choice)
        if (auto it = alone.find(key); it != alone.end()) throw it->second;
      throw;
    }
    p.cells.push_back(std::move(c));
    size_t k = p.axes.size();
    while (k > 0) {
      --k;
      if (++at[k] < p.axes[k].values.size()) break;
      at[k] = 0;
      if (k == 0) return p;
    }
    if (p.axes.empty()) return p;
  }
}

scenario::scenario apply_sets(const scenario_text& s, const std::vector<std::string>& sets) {
  plan p = make_plan(s, sets);
  for (const auto& a : p.axes)
    if (a.values.size() != 1)
      throw input_error(where_of(a), "one value (a list of values is for `backlog-lab sweep`)");
  return std::move(p.cells.front().scenario);
}

std::uint64_t repeat_seed(std::uint64_t sweep_seed, std::size_t repeat) {
  // splitmix64: consecutive repeats get unrelated seeds, and the same inputs the same seed.
  std::uint64_t z = sweep_seed + 0x9e3779b97f4a7c15ULL * (repeat + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) >> 1; // keep it below 2^63 so every JSON reader takes it
}

std::string value_text(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

} // namespace backlog_lab::sweep
