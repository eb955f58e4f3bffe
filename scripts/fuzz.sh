#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/fuzz_targets/*.rs) with libFuzzer, each for SECONDS (less when it crashes), on the committed
# seeds (fuzz/seeds/T), every input that once crashed (fuzz/regressions/T) and the corpus grown by
# earlier campaigns (~/.cache/ebpf-pack/fuzz/corpus/T). Each input is bounded: 10 s, 256 MB per
# allocation, 1 GB resident. One line per target: time, executions, coverage, crashes. A crash leaves
# its input in fuzz/artifacts/T/ and fails the run: minimise it, fix the code, and copy the input into
# fuzz/regressions/T/ (and a unit test beside the fix).
#
# Usage: scripts/fuzz.sh [-j JOBS] SECONDS [TARGET...]     (all targets when none are named)
# The stable toolchain builds the instrumented targets with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes
# nightly-only flags to rustc), without a sanitizer (the code under test has no `unsafe` of its own).
# Our crates are built with overflow checks and debug assertions, aya-obj as ebpf-run ships it
# (fuzz/Cargo.toml says why).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=1
if [ "${1:-}" = "-j" ]; then jobs=$2; shift 2; fi
seconds=${1:?usage: scripts/fuzz.sh [-j JOBS] SECONDS [TARGET...]}
shift
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
command -v cargo-fuzz >/dev/null || {
  echo "fuzz: cargo-fuzz not found: run scripts/install-deps.sh" >&2
  exit 1
}
# Every target at once (cargo builds the shared code once); a build failure stops the run.
(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer none --release) 2>&1 \
  | { grep -v '^ *Compiling ' || true; }
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz: the targets do not build" >&2; exit 1; }
bin=fuzz/target/x86_64-unknown-linux-gnu/release
corpus_root=${EBPF_PACK_CACHE:-$HOME/.cache/ebpf-pack}/fuzz/corpus
logs=fuzz/target/logs
mkdir -p "$logs"

run_one() {
  local t=$1
  [ -x "$bin/$t" ] || { echo "$t: not built" >&2; return 1; }
  local corpus=$corpus_root/$t
  # Artifacts are this run's: earlier crashes belong in fuzz/regressions/T once fixed.
  rm -rf "fuzz/artifacts/$t"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  local dirs=("$corpus" "fuzz/seeds/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  local rc=0 started
  started=$(date +%s)
  "$bin/$t" -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=256 -rss_limit_mb=1024 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" "${dirs[@]}" >"$logs/$t.log" 2>&1 || rc=$?
  # The time it really ran: a crash ends the run early.
  local ran=$(($(date +%s) - started))
  local execs cov ft
  execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$logs/$t.log")
  cov=$(grep -oE 'cov: [0-9]+' "$logs/$t.log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$logs/$t.log" | tail -1 | cut -d' ' -f2)
  local found
  found=$(find "fuzz/artifacts/$t" -type f | wc -l)
  printf '%-14s %5ss %10s execs  cov %6s  ft %6s  corpus %5s  crashes %s\n' "$t" "$ran" "${execs:-?}" \
    "${cov:-?}" "${ft:-?}" "$(find "$corpus" -type f | wc -l)" "$found"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$logs/$t.log" | head -5 >&2
    return 1
  fi
}

failed=0
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: a target crashed or failed; inputs in fuzz/artifacts/, logs in $logs/" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each: no crash"
