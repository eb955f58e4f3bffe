#!/usr/bin/env bash
# Unpacks a bundle into build/demo and, when this machine can run it (root, BPF, BTF), runs all of its
# probes for a few seconds while doing some file opens and execs, so real events show up.
# Usage: scripts/demo-run.sh BUNDLE.tar.gz [SECONDS]
set -euo pipefail
bundle=$1
seconds=${2:-5}
dir=build/demo
rm -rf "$dir" && mkdir -p "$dir"
tar -xzf "$bundle" -C "$dir"
top=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | head -n1)
echo "demo: unpacked $bundle into $top"
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: not root — skipping the live run. Try: sudo $top/ebpf-run --duration $seconds"
  exit 0
fi
if [ ! -e /sys/kernel/btf/vmlinux ] && [ ! -e "$top/btf/vmlinux.btf" ]; then
  echo "demo: this kernel has no BTF (/sys/kernel/btf/vmlinux) — skipping the live run"
  exit 0
fi
[ -d /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
echo "demo: running $top/ebpf-run for ${seconds}s (events on stdout, maps at exit)"
( sleep 1; for i in 1 2 3; do cat /etc/hostname >/dev/null; ls / >/dev/null; sleep 0.5; done ) &
"$top/ebpf-run" --duration "$seconds" > "$dir/output.txt"
wait
echo "demo: $(wc -l < "$dir/output.txt") lines of output in $dir/output.txt; the first 40:"
head -n 40 "$dir/output.txt"
