#!/usr/bin/env bash
# The main job on an example: build untorn, write a database, damage it the ways the
# field does (a torn page, a stale page), and let `untorn check` say exactly what is wrong.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p untorn --example quickstart
out=${1:-target/demo}
mkdir -p "$out"
rm -f "$out"/demo.untorn*
./target/release/examples/quickstart "$out/demo.untorn"
