#!/usr/bin/env bash
# Runs one libFuzzer target of tests/fuzz: first every saved crash input of
# tests/fuzz/regressions/TARGET (each must now pass), then SECONDS of fuzzing from the seeds in
# tests/fuzz/corpus/TARGET (the scenario reader also gets every shipped scenario). A crash fails
# it and leaves the input in the work directory, to be added to regressions/.
#   run_fuzzer.sh FUZZ_BUILD_DIR TARGET SECONDS
# Exit 77 (ctest: skipped) when the target was not built (scripts/setup --test builds it).
set -uo pipefail
build=${1:?fuzz build directory} target=${2:?target} seconds=${3:?seconds}
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/tests/fuzz/fuzz_$target
if [ ! -x "$bin" ]; then
  echo "run_fuzzer: $bin not built (cmake -DBACKLOG_LAB_FUZZ=ON with clang; scripts/setup --test does)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/backlog-lab-fuzz-$target.XXXXXX")
mkdir -p "$work/corpus" "$work/artifacts"
cp "$here/corpus/$target/"* "$work/corpus/" 2>/dev/null
[ "$target" = scenario_reader ] && cp "$here/../../scenarios/"*.json "$work/corpus/"
regressions=("$here/regressions/$target/"*)
if [ -e "${regressions[0]}" ]; then
  "$bin" "${regressions[@]}" || { echo "run_fuzzer: a saved crash input of $target fails again"; exit 1; }
fi
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" 2>"$work/log"
rc=$?
grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+[[:space:]]+DONE)" "$work/log"
if [ $rc -ne 0 ]; then
  tail -n 40 "$work/log"
  echo "run_fuzzer: $target failed (exit $rc); inputs in $work/artifacts"
  exit 1
fi
rm -rf "$work"
echo "run_fuzzer: $target: no crash in ${seconds}s"
