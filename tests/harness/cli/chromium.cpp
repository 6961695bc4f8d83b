#include "tests/harness/cli/chromium.hpp"

#include <chrono>
#include <fstream>
#include <gtest/gtest.h>
#include <string_view>
#include <utility>

#include "harness/lab/process.hpp"
#include "tests/harness/cli/cli_runner.hpp"

namespace backlog_lab::cli {

nlohmann::json render_in_chromium(const std::filesystem::path& html, const std::string& script) {
  namespace fs = std::filesystem;
  fs::path copy = html.parent_path() / "render-check.html";
  fs::path profile = html.parent_path() / "chromium-profile";
  std::string text = read_file(html);
  auto body = text.rfind("</body>");
  if (body == std::string::npos) {
    ADD_FAILURE() << html << " has no </body>";
    return nullptr;
  }
  // The script writes `out` into the DOM, where --dump-dom prints it.
  text.insert(body, "<script>\n" + script + R"(
const pre = document.createElement('pre');
pre.id = 'render-check';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>)");
  std::ofstream(copy) << text;
  // Only the local file is loaded; background networking, updates and sync stay off.
  auto res = lab::run_command(
      nullptr,
      {"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
       "--disable-component-update", "--disable-sync", "--no-first-run",
       "--user-data-dir=" + profile.string(), "--dump-dom", "file://" + copy.string()},
      "", std::chrono::seconds(60));
  std::error_code ec;
  fs::remove(copy, ec);
  fs::remove_all(profile, ec);
  EXPECT_EQ(res.exit_status, 0) << res.err;
  // Plain search rather than std::regex: libstdc++'s matcher recurses once per character of
  // "[^<]*", and the measurements of a long run overflowed the stack under ASan.
  const std::string open = "<pre id=\"render-check\">";
  auto begin = res.out.find(open);
  auto end = begin == std::string::npos ? begin : res.out.find('<', begin + open.size());
  if (end == std::string::npos || res.out.compare(end, 6, "</pre>") != 0) {
    ADD_FAILURE() << "no measurements in the dumped DOM:\n" << res.out.substr(0, 2000);
    return nullptr;
  }
  begin += open.size();
  // --dump-dom escapes text as HTML: undo the entities JSON text can contain (one pass, so
  // that an escaped "&amp;lt;" stays "&lt;").
  static constexpr std::pair<std::string_view, char> entities[] = {
      {"&quot;", '"'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}};
  std::string measured;
  std::string_view dumped(res.out.data() + begin, end - begin);
  for (std::size_t i = 0; i < dumped.size();) {
    bool replaced = false;
    if (dumped[i] == '&')
      for (auto [entity, c] : entities)
        if (dumped.substr(i, entity.size()) == entity) {
          measured += c;
          i += entity.size();
          replaced = true;
          break;
        }
    if (!replaced) measured += dumped[i++];
  }
  return nlohmann::json::parse(measured);
}

} // namespace backlog_lab::cli
