#pragma once
// Renders a report page in headless Debian chromium (file:// only, no network) and reads back
// what a measuring script found in the rendered DOM.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace backlog_lab::cli {

/// Appends `script` (JavaScript that assigns the JSON-serialisable variable `out`) to a copy of
/// `html`, renders the copy in headless chromium with --dump-dom and returns `out` as JSON
/// (null, with a test failure, if chromium failed). The copy and chromium's profile live in
/// `html`'s directory and are removed afterwards.
nlohmann::json render_in_chromium(const std::filesystem::path& html, const std::string& script);

} // namespace backlog_lab::cli
