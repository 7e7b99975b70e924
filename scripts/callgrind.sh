#!/usr/bin/env bash
# Instruction counts of one benchmark phase of untorn alone, repeatable on a noisy machine:
#
#   scripts/callgrind.sh random-reads            # 100,000 keys by default
#   scripts/callgrind.sh bulk-load --keys 20000
#   scripts/callgrind.sh random-reads-4t
#
# The phases before PHASE run first (they build its starting state) but are not counted:
# callgrind collects only inside the phase's own function (`phase_<name>`), via
# --toggle-collect. The pattern ends at the function's name: `*phase_<name>*` would also
# match the closures inside it (`phase_<name>::{{closure}}`), and entering one would
# toggle collection off for the very work the phase times (range reads and removals run
# inside such closures). Prints the phase's total instruction count (Ir) and leaves
# target/callgrind/PHASE.out for callgrind_annotate. Compare before/after on the same keys.
set -euo pipefail
cd "$(dirname "$0")/.."
phase=${1:?usage: scripts/callgrind.sh PHASE [untorn-bench options, e.g. --keys N]}
shift
case "$phase" in
  size-*|len) echo "callgrind.sh: pick a timed phase other than $phase" >&2; exit 2 ;;
esac
fn=$(echo "$phase" | tr '-' '_')
toggles=()
case "$fn" in
  random_reads_*t) fn=random_reads_threads; toggles=(--toggle-collect='*reader_thread*') ;;
esac
command -v valgrind >/dev/null || { echo "callgrind.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
cargo build --release --locked -p untorn-bench >&2
mkdir -p target/callgrind
out=target/callgrind/$phase.out
keys_default=(--keys 100000)
for a in "$@"; do case "$a" in --keys|--small) keys_default=() ;; esac; done
valgrind --tool=callgrind --callgrind-out-file="$out" \
  --toggle-collect="*::phase_${fn}" "${toggles[@]}" \
  target/release/untorn-bench phase --engine untorn --phase "$phase" "${keys_default[@]}" "$@" >&2
ir=$(awk '/^totals:/ {t=$2} /^summary:/ {s=$2} END {print (t != "" ? t : s)}' "$out")
echo "$phase: $ir instructions (Ir), $out"
