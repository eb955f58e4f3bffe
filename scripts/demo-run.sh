#!/usr/bin/env bash
# Unpacks a bundle into build/demo and, when this machine can run it (root, BPF, BTF), runs all of its
# execsnoop, opensnoop and syscount for a few seconds while doing some file opens and execs, so real
# events show up (`$top/ebpf-run --check` says which of the bundle's other tools this kernel can run).
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
echo "demo: running $top/ebpf-run execsnoop opensnoop syscount for ${seconds}s (events on stdout, maps at exit)"
( sleep 1; for i in 1 2 3; do cat /etc/hostname >/dev/null; ls / >/dev/null; sleep 0.5; done ) &
"$top/ebpf-run" execsnoop opensnoop syscount -T 10 --duration "$seconds" > "$dir/output.txt"
wait
out=$dir/output.txt
echo "demo: $(grep -c '^opensnoop ' "$out") opensnoop and $(grep -c '^execsnoop ' "$out") execsnoop events; full output in $out"
echo "--- execsnoop: the programs started during the run"
grep '^execsnoop ' "$out" | head -n 10
echo "--- opensnoop: the demo's own opens of /etc/hostname"
grep '^opensnoop .*path=/etc/hostname' "$out" | head -n 5
echo "--- syscount: the 10 busiest system calls (syscall number, count)"
sed -n '/^syscount map counts:/,$p' "$out" | head -n 11
