#!/usr/bin/env bash
# Builds the .deb from a finished build (cpack), installs it, runs backlog-lab from another
# directory as a user would, checks its man pages and completion, then purges it and checks that
# nothing it installed is left. Exit 77 (skipped) where it cannot run.
set -euo pipefail
build=$1
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root (dpkg -i)"; exit 77; }
command -v help2man >/dev/null || { echo "skipped: help2man missing (scripts/setup installs it)"; exit 77; }
if dpkg-query -W -f='${Status}' backlog-lab 2>/dev/null | grep -q "install ok installed"; then
  echo "skipped: a backlog-lab package is already installed here; not touching it"
  exit 77
fi

work=$(mktemp -d /tmp/backlog-lab-deb.XXXXXX)
installed=0
cleanup() {
  [ "$installed" -eq 1 ] && dpkg --purge backlog-lab >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack -G DEB"; }
deb=$(ls "$work"/out/backlog-lab_*.deb)
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

info=$(dpkg-deb --field "$deb" Package Version Depends)
echo "$info"
for dep in iproute2 iptables nftables conntrack libc6 libstdc++6 libmnl0; do
  grep -q "Depends:.*\b$dep\b" <<<"$info" || fail "Depends lacks $dep"
done
dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents"
for f in /usr/bin/backlog-lab /usr/share/man/man1/backlog-lab.1 /usr/share/man/man1/backlog-lab-run.1 \
  /usr/share/bash-completion/completions/backlog-lab /usr/share/doc/backlog-lab/README.md \
  /usr/share/doc/backlog-lab/scenario-format.md; do
  grep -qx "$f" "$work/contents" || fail "the package lacks $f"
done
# One man page per subcommand the binary has.
for sub in $("$build/backlog-lab" --help | sed -n '/^Subcommands:/,$s/^  \([a-z][a-z-]*\) .*/\1/p'); do
  grep -qx "/usr/share/man/man1/backlog-lab-$sub.1" "$work/contents" || fail "no man page for $sub"
done

dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
installed=1
mkdir "$work/elsewhere"
cd "$work/elsewhere"
[ "$(command -v backlog-lab)" = /usr/bin/backlog-lab ] || fail "backlog-lab is not /usr/bin/backlog-lab"
/usr/bin/backlog-lab --version
/usr/bin/backlog-lab check incident-2018-03
# The default scenario, built into the binary, from a directory with no scenarios in it.
/usr/bin/backlog-lab run -q --json "$work/run.json" || fail "backlog-lab run exited $?"
grep -q '"passed": true' "$work/run.json" || fail "the run did not pass"
# The man pages are the CLI's own help: every option of `run --help` is in backlog-lab-run(1).
page=$(MANWIDTH=200 man -P cat backlog-lab-run 2>/dev/null || zcat -f /usr/share/man/man1/backlog-lab-run.1*)
for opt in $(/usr/bin/backlog-lab run --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
  grep -q -- "$opt" <<<"${page//\\-/-}" || fail "backlog-lab-run(1) lacks $opt"
done
# Completion: the subcommands, then run's options and the shipped scenario names.
if [ -f /usr/share/bash-completion/bash_completion ]; then
  complete_words() {
    bash -c 'source /usr/share/bash-completion/bash_completion
      source /usr/share/bash-completion/completions/backlog-lab
      COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
      _backlog_lab; printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
  }
  # Captured first: grep -q stops reading at its match, and under pipefail the writer's SIGPIPE
  # would fail the check.
  subs=$(complete_words backlog-lab "")
  grep -qx sweep <<<"$subs" || fail "completion lacks the sweep subcommand"
  opts=$(complete_words backlog-lab run --js)
  grep -qx -- --json <<<"$opts" || fail "completion lacks run --json"
  names=$(complete_words backlog-lab run incident-2018-03-kube)
  grep -qx incident-2018-03-kube-proxy-1.24 <<<"$names" ||
    fail "completion lacks the shipped scenario incident-2018-03-kube-proxy-1.24: $names"
fi
cd /

dpkg --purge backlog-lab >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg --purge"; }
installed=0
! dpkg-query -W -f='${Status}' backlog-lab 2>/dev/null | grep -q "install ok installed" ||
  fail "still installed after purge"
while read -r f; do
  [ -z "$f" ] || [ -d "$f" ] && continue
  [ ! -e "$f" ] || fail "$f is left after purge"
done <"$work/contents"
echo "package.deb: built, installed, ran, purged; nothing left"
