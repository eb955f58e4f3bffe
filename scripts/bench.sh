#!/usr/bin/env bash
# Benchmarks of the bundle pipeline, printed as a Markdown table for docs/PERFORMANCE.md:
#   - cold build: a fresh copy of the project (empty cargo target dir, no build/) builds the x86_64 bundle
#   - no-change rebuild of the same target
#   - stripped static loader size and bundle size per target
# Usage: scripts/bench.sh [TARGET...]    (default: x86_64 rpi4 beaglebone riscv64 s390x)
# Timings are wall-clock on this machine; run on an otherwise idle host.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64 rpi4 beaglebone riscv64 s390x)
cargo build --locked --release -q -p ebpf-pack
cli=$PWD/target/release/ebpf-pack

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

work=$(mktemp -d /tmp/ebpf-pack-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -f "$f" ] && install -D -m "$(stat -c %a "$f")" "$f" "$work/copy/$f"
done

echo "## Build times (x86_64 target, $(nproc) cores)"
echo
t0=$(now); "$cli" -C "$work/copy" build --target x86_64 >/dev/null 2>&1; t1=$(now)
"$cli" -C "$work/copy" build --target x86_64 >/dev/null 2>&1; t2=$(now)
echo "| build | seconds |"
echo "|---|---|"
echo "| cold (fresh copy: all crates, clang, LTO loader) | $(elapsed "$t0" "$t1") |"
echo "| no change | $(elapsed "$t1" "$t2") |"
echo
# A user's own project, built by the CLI outside any checkout (the binary `cargo install --path cli`
# makes is this one): `init`, then the first board of a triple (assets unpacked into a fresh cache, the
# carried ebpf-run source built there, clang), a second board of the same triple, and no change.
echo "## Out-of-tree project (ebpf-pack init, fresh EBPF_PACK_CACHE, $(nproc) cores)"
echo
"$cli" init "$work/own" --board rpi4 --board qemuarm64 --ci none >/dev/null
export EBPF_PACK_CACHE="$work/cache"
t0=$(now); "$cli" -C "$work/own" build --target rpi4 >/dev/null 2>&1; t1=$(now)
"$cli" -C "$work/own" build --target qemuarm64 >/dev/null 2>&1; t2=$(now)
"$cli" -C "$work/own" build --target rpi4 >/dev/null 2>&1; t3=$(now)
"$cli" -C "$work/own" build >/dev/null 2>&1; t4=$(now)
unset EBPF_PACK_CACHE
echo "| build | seconds |"
echo "|---|---|"
echo "| cold: rpi4 (unpack headers + loader source, build ebpf-run for aarch64-musl, clang) | $(elapsed "$t0" "$t1") |"
echo "| qemuarm64, the same triple (loader already built in the cache) | $(elapsed "$t1" "$t2") |"
echo "| no change: rpi4 | $(elapsed "$t2" "$t3") |"
echo "| no change: both boards of ebpf-pack.yaml | $(elapsed "$t3" "$t4") |"
echo
echo "## Sizes"
echo
echo "| target | triple | stripped static ebpf-run (bytes) | KiB | bundle .tar.gz (bytes) | objects (bytes) |"
echo "|---|---|---|---|---|---|"
for t in "${targets[@]}"; do
  out=$("$cli" build --target "$t" 2>/dev/null | awk '{print $2}')
  loader=build/$t/stage/ebpf-run
  triple=$("$cli" targets --json | python3 -c "import json,sys; print([x['triple'] for x in json.load(sys.stdin) if x['name']=='$t'][0])")
  objs=$(cat build/"$t"/stage/bpf/*.bpf.o | wc -c)
  size=$(stat -c %s "$loader")
  echo "| $t | $triple | $size | $((size / 1024)) | $(stat -c %s "$out") | $objs |"
done
