#include "harness/sweep/settings.hpp"

namespace backlog_lab::sweep {

using json = nlohmann::json;

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
  p.axes = scenario::parse_sets(sets, check);
  std::vector<size_t> at(p.axes.size(), 0);
  for (size_t index = 0;; ++index) {
    scenario::set_choice choice;
    cell c;
    c.index = index;
    for (size_t k = 0; k < p.axes.size(); ++k) {
      choice.emplace_back(&p.axes[k], &p.axes[k].values[at[k]]);
      c.settings.emplace_back(p.axes[k].key, p.axes[k].values[at[k]]);
    }
    c.scenario = scenario::parse_with_sets(p.document, p.source, choice);
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

std::uint64_t repeat_seed(std::uint64_t sweep_seed, std::size_t repeat) {
  // splitmix64: consecutive repeats get unrelated seeds, and the same inputs the same seed.
  std::uint64_t z = sweep_seed + 0x9e3779b97f4a7c15ULL * (repeat + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) >> 1; // keep it below 2^63 so every JSON reader takes it
}

} // namespace backlog_lab::sweep
