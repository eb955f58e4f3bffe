#!/usr/bin/env bash
# Benchmark of `ebpf-pack run --via serial:` (docs/PERFORMANCE.md): the bundle push over a real serial
# console — an arm64 QEMU guest booted by `ebpf-pack try --serve` with a busybox shell on its PL011 UART —
# once unpaced (as fast as the emulated UART and the guest's shell take it) and once paced by the host
# to 115200 baud (8N1, what a real board's console runs at), each into a freshly booted guest; then the
# time from `ebpf-pack run` to the guest's ebpf-run attached with the bundle already there.
# Needs qemu-system-aarch64 and the provisioned arm64 guest (scripts/provision-test-kernels.sh arm64).
# Usage: scripts/bench-serial.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release -q -p ebpf-pack
cli=$PWD/target/release/ebpf-pack
eval "$(bash scripts/provision-test-kernels.sh arm64 | grep -E '^(kernel|busybox)=')"
"$cli" build --target qemuarm64 >/dev/null 2>&1
bundle=$(ls dist/ebpf-pack-[0-9]*-qemuarm64.tar.gz)
size=$(stat -c %s "$bundle")
work=$(mktemp -d /tmp/ebpf-pack-bench-serial.XXXXXX)
guest=
trap 'kill "$guest" 2>/dev/null || true; rm -rf "$work"' EXIT
boot() {
  "$cli" try --target qemuarm64 --kernel "$kernel" --busybox "$busybox" --serve "$work/console.sock" \
    >/dev/null 2>"$work/serve.log" &
  guest=$!
  while [ ! -S "$work/console.sock" ]; do sleep 0.1; done
}
push() { # VIA: prints the push's own report line
  "$cli" run --bundle "$bundle" --via "$1" -- opensnoop --duration 1 2>&1 >/dev/null | grep ' bytes over '
}
echo "bundle: $bundle ($size bytes)"
for via in "serial:unix:$work/console.sock" "serial:unix:$work/console.sock@115200"; do
  boot
  # Let the guest finish booting before timing (the push waits for its shell anyway).
  sleep 20
  echo "push $via: $(push "$via")"
  if [ "$via" = "serial:unix:$work/console.sock" ]; then
    for i in 1 2 3; do
      start=$(date +%s.%N)
      "$cli" run --bundle "$bundle" --via "$via" -- opensnoop --duration 1 >/dev/null 2>&1
      end=$(date +%s.%N)
      echo "warm run (bundle there, 1 s of tracing included): $(awk "BEGIN {printf \"%.2f\", $end - $start}") s"
    done
  fi
  kill "$guest"; wait "$guest" 2>/dev/null || true
  rm -f "$work/console.sock"
done
