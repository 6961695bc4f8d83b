#include "harness/scenario/config_template.hpp"

#include <algorithm>

#include "harness/core/error.hpp"

namespace backlog_lab::scenario {
namespace {

struct tag {
  size_t begin = 0; ///< position of "{{"
  size_t end = 0;   ///< one past "}}"
  char kind = 0;    ///< 0 value, '#' section start, '/' section end
  std::string name;
};

size_t line_of(const std::string& text, size_t pos) {
  return 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + pos, '\n'));
}

std::string where(const std::string& source, const std::string& text, size_t pos) {
  return source + " line " + std::to_string(line_of(text, pos));
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t");
  size_t b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// The next tag at or after `from`, or none (begin == npos).
tag next_tag(const std::string& text, size_t from, const std::string& source) {
  tag t;
  t.begin = text.find("{{", from);
  if (t.begin == std::string::npos) return t;
  size_t close = text.find("}}", t.begin + 2);
  if (close == std::string::npos)
    throw input_error(where(source, text, t.begin), "a '}}' closing this '{{'");
  std::string inner = trim(text.substr(t.begin + 2, close - t.begin - 2));
  if (!inner.empty() && (inner[0] == '#' || inner[0] == '/')) {
    t.kind = inner[0];
    inner = trim(inner.substr(1));
  }
  if (inner.empty()) throw input_error(where(source, text, t.begin), "a name inside '{{ }}'");
  t.name = inner;
  t.end = close + 2;
  return t;
}

// The matching {{/name}} of a section whose body starts at `from`.
tag section_end(const std::string& text, size_t from, const std::string& name,
                const std::string& source, size_t opened_at) {
  int depth = 1;
  for (tag t = next_tag(text, from, source); t.begin != std::string::npos;
       t = next_tag(text, t.end, source)) {
    if (t.kind == '#' && t.name == name) ++depth;
    if (t.kind == '/' && t.name == name && --depth == 0) return t;
  }
  throw input_error(where(source, text, opened_at), "a '{{/" + name + "}}' closing this section");
}

void render_range(const std::string& text, size_t from, size_t to,
                  const std::vector<const template_values::item*>& scopes, const template_values& v,
                  const std::string& source, std::string& out) {
  size_t pos = from;
  while (pos < to) {
    tag t = next_tag(text, pos, source);
    if (t.begin == std::string::npos || t.begin >= to) {
      out.append(text, pos, to - pos);
      return;
    }
    out.append(text, pos, t.begin - pos);
    if (t.kind == '/')
      throw input_error(where(source, text, t.begin), "no '{{/" + t.name + "}}' without its start");
    if (t.kind == '#') {
      tag e = section_end(text, t.end, t.name, source, t.begin);
      auto list = v.lists.find(t.name);
      if (list == v.lists.end())
        throw input_error(where(source, text, t.begin),
                          "a known list in '{{#" + t.name + "}}' (see docs/your-software.md)");
      for (const auto& item : list->second) {
        auto inner = scopes;
        inner.push_back(&item);
        render_range(text, t.end, e.begin, inner, v, source, out);
      }
      pos = e.end;
      continue;
    }
    bool found = false;
    for (auto s = scopes.rbegin(); s != scopes.rend() && !found; ++s)
      if (auto it = (*s)->find(t.name); it != (*s)->end()) {
        out += it->second;
        found = true;
      }
    if (!found) {
      auto it = v.values.find(t.name);
      if (it == v.values.end())
        throw input_error(where(source, text, t.begin), "a known placeholder, not '{{" + t.name +
                                                            "}}' (see docs/your-software.md)");
      out += it->second;
    }
    pos = t.end;
  }
}

} // namespace

std::string render_template(const std::string& text, const template_values& v,
                            const std::string& source) {
  std::string out;
  out.reserve(text.size());
  render_range(text, 0, text.size(), {}, v, source, out);
  return out;
}

std::vector<std::string> template_names(const std::string& text, const std::string& source) {
  std::vector<std::string> out;
  std::vector<std::pair<std::string, size_t>> open;
  for (tag t = next_tag(text, 0, source); t.begin != std::string::npos;
       t = next_tag(text, t.end, source)) {
    if (t.kind == '/') {
      if (open.empty() || open.back().first != t.name)
        throw input_error(where(source, text, t.begin),
                          "no '{{/" + t.name + "}}' without its start");
      open.pop_back();
      continue;
    }
    if (t.kind == '#') open.emplace_back(t.name, t.begin);
    if (std::find(out.begin(), out.end(), t.name) == out.end()) out.push_back(t.name);
  }
  if (!open.empty())
    throw input_error(where(source, text, open.back().second),
                      "a '{{/" + open.back().first + "}}' closing this section");
  return out;
}

} // namespace backlog_lab::scenario
