#!/usr/bin/env bash
# The long soak of docs/RELIABILITY.md: opensnoop's ring buffer overflowing for SOAK_SECONDS (default
# 600) with --interval dumps, as tests/run_on_this_kernel.rs's soak test runs it for 30 s. Prints the
# test's figure line: opens, printed, lost, dumps, resident memory range, file descriptors.
#
# Usage: scripts/bench-soak.sh [SECONDS]        (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
# The whole output goes to target/bench-soak.log; the figure line (or the failure) is printed.
log=target/bench-soak.log
mkdir -p target
rc=0
EBPF_PACK_SOAK_SECONDS=${1:-600} cargo test --locked -q -p ebpf-pack --test run_on_this_kernel \
  soak_an_overflowing_ring_buffer -- --nocapture >"$log" 2>&1 || rc=$?
grep -E '^soak |test result' "$log" || true
if [ "$rc" -ne 0 ]; then
  grep -A12 'panicked' "$log" >&2 || tail -20 "$log" >&2
  exit "$rc"
fi
