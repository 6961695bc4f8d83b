#!/usr/bin/env bash
# The host as the test suite must leave it: its net.* sysctls, iptables/ip6tables (nf_tables and
# legacy) and nft rulesets, links and named network namespaces.
#   host_state.sh snapshot DIR   record them (ctest runs this before every other test)
#   host_state.sh compare DIR    fail, showing the difference, if anything changed (runs last)
set -uo pipefail
mode=${1:?snapshot or compare}
dir=${2:?directory}

record() {
  local out=$1
  mkdir -p "$out"
  # Values the kernel changes by itself (counts of live entries) are not settings: left out.
  sysctl -a -r '^net\.' 2>/dev/null |
    grep -vE '^net\.netfilter\.nf_conntrack_count|^net\.ipv4\.neigh\..*\.(base_reachable_time|retrans_time) ' \
      >"$out/sysctl"
  for tool in iptables-save ip6tables-save iptables-legacy-save ip6tables-legacy-save; do
    if command -v "$tool" >/dev/null; then
      "$tool" 2>/dev/null | grep -vE '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[counters]/' >"$out/$tool"
    fi
  done
  if command -v nft >/dev/null; then
    nft -s list ruleset 2>/dev/null >"$out/nft"
  fi
  ip -o link show 2>/dev/null | sed -E 's/^[0-9]+: //; s/ state [A-Z]+//; s/ qlen [0-9]+//' |
    awk '{print $1, $2}' | sort >"$out/links"
  ip netns list 2>/dev/null | sort >"$out/netns"
}

case "$mode" in
  snapshot)
    rm -rf "$dir"
    record "$dir/before"
    echo "host_state: recorded $(wc -l <"$dir/before/sysctl") sysctls, rulesets, links, namespaces"
    ;;
  compare)
    [ -d "$dir/before" ] || { echo "host_state: no snapshot in $dir" >&2; exit 1; }
    rm -rf "$dir/after"
    record "$dir/after"
    if diff -ru "$dir/before" "$dir/after"; then
      echo "host_state: the host is as the suite found it"
    else
      echo "host_state: the test suite changed the host (diff above: - before, + after)" >&2
      exit 1
    fi
    ;;
  *) echo "usage: host_state.sh snapshot|compare DIR" >&2; exit 2 ;;
esac
