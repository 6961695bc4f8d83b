#pragma once
// Configuration templates for a user's program (docs/your-software.md#placeholders): a small
// subset of Mustache, chosen because neither nginx, haproxy nor envoy configs use `{{`.
//   {{name}}              a value; an unknown name is an error (never rendered as empty)
//   {{#list}}...{{/list}} the body once per item of a list, with the item's values in scope
#include <map>
#include <string>
#include <vector>

namespace backlog_lab::scenario {

/// Values one rendering sees.
struct template_values {
  using item = std::map<std::string, std::string>;
  std::map<std::string, std::string> values;
  std::map<std::string, std::vector<item>> lists;
};

/// Renders `text`; `source` names it in errors (input_error: "SOURCE line N", what is wrong).
std::string render_template(const std::string& text, const template_values& v,
                            const std::string& source);

/// The names `text` refers to (values and lists, sections' own names included), for checking a
/// template when the scenario is read. Throws input_error on unbalanced sections.
std::vector<std::string> template_names(const std::string& text, const std::string& source);

} // namespace backlog_lab::scenario
