#!/usr/bin/env bash
# The main job on an example: build `untorn`, write a database, damage it the ways the
# field does (a torn page, a stale page from an older copy of the file), and let
# `untorn check` and `untorn map` say exactly what is wrong and where.
# With the real peers installed (scripts/test.sh does that), it also replays the etcd
# incident on a real bbolt file: a page cycle that bbolt's own checker cannot survive.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p untorn-cli
U=$PWD/target/release/untorn
out=${1:-target/demo}
rm -rf "$out" && mkdir -p "$out"
db=$out/demo.untorn

echo "== 1. a database with 2,000 users (untorn load reads JSON lines)"
for i in $(seq -w 1 2000); do
  printf '{"bucket":["users"],"key":"user%s","value":"profile of user %s %s"}\n' "$i" "$i" "$(printf 'x%.0s' $(seq 1 $((10#$i % 40))))"
done | "$U" load "$db"
"$U" info "$db"
cp "$db" "$out/older-copy.untorn"
# Keep updating after the copy, so pages of the copy get reused for newer versions.
for round in 1 2 3 4 5 6; do
  for i in $(seq -w 1 5 2000); do
    printf '{"bucket":["users"],"key":"user%s","value":"round %s of user %s"}\n' "$i" "$round" "$i"
  done | "$U" load "$db" >/dev/null
done
"$U" check "$db" && echo "   check: clean"

echo
echo "== 2. damage: a torn write in one leaf, and a stale copy of another page (a lost write)"
python3 - "$db" "$out/older-copy.untorn" "$("$U" pages "$db" --json)" <<'PY'
import json, sys
path, old_path, pages = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ps = 4096
rows = pages["pages"] if isinstance(pages, dict) else pages
leaves = [r["id"] for r in rows if r["type"] == "leaf" and r["state"] == "reachable"]
cur, old = bytearray(open(path, "rb").read()), open(old_path, "rb").read()
torn = leaves[len(leaves) // 3]
half = slice(torn * ps + ps // 2, (torn + 1) * ps)
cur[half] = bytes(b ^ 0x5A for b in cur[half])
print(f"   tore the second half of leaf page {torn}")
for p in leaves[len(leaves) // 2:]:
    o = old[p * ps:(p + 1) * ps]
    if len(o) == ps and o != bytes(cur[p * ps:(p + 1) * ps]) and o.strip(b"\0"):
        cur[p * ps:(p + 1) * ps] = o
        print(f"   put back an older version of page {p}: valid on its own, but not what its parent expects")
        break
open(path, "wb").write(cur)
PY
echo
echo "== 3. untorn check (exit 1: findings, each with its page and the path from the root)"
"$U" check "$db" || echo "   (exit $?)"
"$U" map "$db" --svg "$out/demo.svg" && echo "   map: $out/demo.svg"
echo "   reading the damaged data is an error naming the page, never wrong bytes:"
"$U" dump "$db" > /dev/null || true

peers=${PEERS_BIN:-$PWD/target/peers}
if [ -x "$peers/bboltbench/bboltbench" ] && "$U" check --help >/dev/null; then
  echo
  echo "== 4. the etcd incident: a real bbolt file with a page cycle"
  B=$peers/bboltbench/bboltbench
  "$B" -db "$out/etcd.db" -op load -n 100000 >/dev/null 2>&1
  "$B" -db "$out/etcd.db" -op corruptcycle -how pgid >/dev/null 2>&1
  echo "   bbolt's own check (10 s limit):"
  timeout 10 "$B" -db "$out/etcd.db" -op check -showerr 2 2>&1 | head -3 || true
  echo "   untorn check:"
  time "$U" check "$out/etcd.db" --max-findings 5 || true
  if "$U" salvage --help >/dev/null 2>&1; then
    "$U" salvage "$out/etcd.db" "$out/etcd-salvaged.db" || true
    "$B" -db "$out/etcd-salvaged.db" -op check && echo "   bbolt's check passes on the salvaged file"
  fi
else
  echo
  echo "(install the peers with scripts/test.sh to also replay the bbolt/etcd page-cycle incident)"
fi
