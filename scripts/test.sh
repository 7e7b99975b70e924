#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs the real peers (Go + bbolt 1.3.6,
# etcd 3.4, from Debian's packages, via ../shared/peers/setup.sh) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PEERS_BIN="${PEERS_BIN:-$PWD/target/peers}"
export PEERS_DIR="${PEERS_DIR:-$(cd .. && pwd)/shared/peers}"
if [ -f ../shared/peers/setup.sh ]; then
  bash ../shared/peers/setup.sh
else
  echo "scripts/test.sh: ../shared/peers/setup.sh not found; bbolt/etcd tests will fail" >&2
fi
cargo test --workspace --locked "$@"
# The typed layer's serde codec is behind a feature no workspace member enables.
cargo test --locked -p untorn --features serde --lib typed "$@"
