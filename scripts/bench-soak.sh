#!/usr/bin/env bash
# The long soak of docs/RELIABILITY.md: opensnoop's ring buffer overflowing for SOAK_SECONDS (default
# 600) with --interval dumps, as tests/run_on_this_kernel.rs's soak test runs it for 30 s. Prints the
# test's figure line: opens, printed, lost, dumps, resident memory range, file descriptors.
#
# Usage: scripts/bench-soak.sh [SECONDS]        (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
EBPF_PACK_SOAK_SECONDS=${1:-600} cargo test --locked -q -p ebpf-pack --test run_on_this_kernel \
  soak_an_overflowing_ring_buffer -- --nocapture 2>&1 | grep -E '^soak |test result'
