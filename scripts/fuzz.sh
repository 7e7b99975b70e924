#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60) with cargo-fuzz on the stable toolchain
# (no sanitizer: `-s none`), starting from the committed seeds in fuzz/seeds/<target>.
#   cargo install cargo-fuzz && scripts/fuzz.sh [SECONDS] [TARGET...]
# CI does not run this script: installing cargo-fuzz and building the instrumented
# targets would take most of CI's budget. Every target's entry point runs instead as a
# bounded stable loop inside `cargo test` (see each target's header for its test).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(open_read check bbolt_check recovery)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  echo "== fuzz $t for ${secs}s"
  cargo fuzz run -s none "$t" "corpus/$t" "${seeds[@]}" -- -max_total_time="$secs" -rss_limit_mb=4096 -max_len=300000
done
