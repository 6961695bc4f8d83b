#include "tests/harness/cli/chromium.hpp"

#include <chrono>
#include <fstream>
#include <gtest/gtest.h>
#include <regex>

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
  std::smatch m;
  if (!std::regex_search(res.out, m, std::regex("<pre id=\"render-check\">([^<]*)</pre>"))) {
    ADD_FAILURE() << "no measurements in the dumped DOM:\n" << res.out.substr(0, 2000);
    return nullptr;
  }
  // --dump-dom escapes text as HTML: undo the entities JSON text can contain.
  std::string measured = std::regex_replace(m[1].str(), std::regex("&quot;"), "\"");
  measured = std::regex_replace(measured, std::regex("&lt;"), "<");
  measured = std::regex_replace(measured, std::regex("&gt;"), ">");
  measured = std::regex_replace(measured, std::regex("&amp;"), "&");
  return nlohmann::json::parse(measured);
}

} // namespace backlog_lab::cli
