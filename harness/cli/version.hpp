#pragma once
// The program's version string.

namespace backlog_lab::cli {

/// "backlog-lab X.Y.Z".
const char* version();

} // namespace backlog_lab::cli
