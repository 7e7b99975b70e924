#!/usr/bin/env bash
# Reproduces BENCHMARKS.md and docs/benchmarks.svg: untorn against redb, LMDB, fjall, SQLite,
# RocksDB and bbolt on redb's benchmark phases (1,000,000 keys by default), at low priority.
#
#   scripts/bench.sh                      # the full comparison (about an hour on 2 vCPUs)
#   scripts/bench.sh --small --reps 1     # 100,000 keys, a few minutes
#   scripts/bench.sh --engines untorn,redb,lmdb
#
# Every argument goes to `untorn-bench all` (see `untorn-bench all --help`). Needs Debian's
# librocksdb-dev, libsqlite3-dev, clang/libclang (bindgen) and Go + bbolt 1.3.6; installs
# whatever is missing with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
need=""
for p in librocksdb-dev libsqlite3-dev clang libclang-dev golang-go golang-github-coreos-bbolt-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $need >/dev/null
fi
mkdir -p target/peers
# The bbolt column: a Go driver over Debian's bbolt 1.3.6 (GOPATH mode, no network).
GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= \
  go build -o target/peers/untorn-bench-bbolt ./crates/untorn-bench/bbolt/
# The LMDB column: its own crate outside the workspace (heed's API is `unsafe`).
nice -n 10 cargo build --release --locked --manifest-path crates/untorn-bench/lmdb/Cargo.toml \
  --target-dir target/lmdb-driver
cp target/lmdb-driver/release/untorn-bench-lmdb target/peers/untorn-bench-lmdb
# RocksDB links Debian's librocksdb dynamically (ROCKSDB_LIB_DIR in .cargo/config.toml).
nice -n 10 cargo build --release --locked -p untorn-bench --features peers
# Run a copy: the harness re-executes itself per engine, and another cargo build (e.g.
# scripts/callgrind.sh, without peers) must not swap the binary under a running comparison.
mkdir -p target/bench
cp target/release/untorn-bench target/bench/untorn-bench-peers
export UNTORN_BENCH_COMMAND="scripts/bench.sh $*"
exec nice -n 10 target/bench/untorn-bench-peers all \
  --bbolt target/peers/untorn-bench-bbolt --lmdb target/peers/untorn-bench-lmdb \
  --json docs/benchmarks.json "$@"
