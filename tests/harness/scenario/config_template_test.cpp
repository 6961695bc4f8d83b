#include <gtest/gtest.h>

#include "harness/core/error.hpp"
#include "harness/scenario/config_template.hpp"

namespace backlog_lab::scenario {
namespace {

template_values values() {
  template_values v;
  v.values = {{"node_address", "198.51.100.1"}, {"service.web.node_port", "30080"}};
  v.lists["service.web.endpoints"] = {{{"address", "203.0.113.10"}, {"port", "8080"}},
                                      {{"address", "203.0.113.11"}, {"port", "8080"}}};
  return v;
}

TEST(config_template, renders_values_and_sections) {
  std::string text =
      "frontend f\n  bind {{node_address}}:{{ service.web.node_port }}\n"
      "{{#service.web.endpoints}}  server s {{address}}:{{port}} # {{node_address}}\n"
      "{{/service.web.endpoints}}";
  EXPECT_EQ(render_template(text, values(), "t"), "frontend f\n  bind 198.51.100.1:30080\n"
                                                  "  server s 203.0.113.10:8080 # 198.51.100.1\n"
                                                  "  server s 203.0.113.11:8080 # 198.51.100.1\n");
  auto names = template_names(text, "t");
  EXPECT_EQ(names.size(), 5u);
}

TEST(config_template, nginx_and_haproxy_syntax_passes_through) {
  std::string text = "location / { proxy_pass http://up; set $x ${y}; }";
  EXPECT_EQ(render_template(text, values(), "t"), text);
}

TEST(config_template, unknown_names_and_unbalanced_sections_are_errors_with_lines) {
  try {
    render_template("a\nlisten {{node_port}};\n", values(), "proxy.conf");
    FAIL() << "expected input_error";
  } catch (const input_error& e) {
    EXPECT_EQ(e.where(), "proxy.conf line 2");
    EXPECT_NE(e.expected().find("{{node_port}}"), std::string::npos);
  }
  EXPECT_THROW(render_template("{{#nolist}}x{{/nolist}}", values(), "t"), input_error);
  EXPECT_THROW(template_names("{{#a}}x", "t"), input_error);
  EXPECT_THROW(template_names("x{{/a}}", "t"), input_error);
  EXPECT_THROW(template_names("x{{a", "t"), input_error);
}

} // namespace
} // namespace backlog_lab::scenario
