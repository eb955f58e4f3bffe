#!/usr/bin/env bash
# Benchmark of `ebpf-pack run --via ssh` on loopback (docs/PERFORMANCE.md): time from starting
# `ebpf-pack run` to the board's ebpf-run reporting its programs attached (ready for the first event),
# warm: bundle built and already on the board. An sshd with throwaway keys runs on a free port for it.
# Needs root (sshd, loading BPF) and openssh-server (scripts/install-deps.sh). Usage: scripts/bench-run.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --locked --release -q -p ebpf-pack
cli=$PWD/target/release/ebpf-pack
work=$(mktemp -d /tmp/ebpf-pack-bench-run.XXXXXX)
trap 'kill "${sshd_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N '' -f "$work/host"
ssh-keygen -q -t ed25519 -N '' -f "$work/user"
cp "$work/user.pub" "$work/authorized_keys"
mkdir -p /run/sshd
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/sbin/sshd -D -f /dev/null -p "$port" -h "$work/host" -o ListenAddress=127.0.0.1 \
  -o "AuthorizedKeysFile=$work/authorized_keys" -o PermitRootLogin=prohibit-password \
  -o StrictModes=no -o UsePAM=no -o PidFile=none &
sshd_pid=$!
printf '#!/bin/sh\nexec ssh -F /dev/null -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$@"\n' \
  "$work/user" > "$work/ssh"
chmod +x "$work/ssh"
export EBPF_PACK_SSH=$work/ssh
sleep 1
[ -d /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing
"$cli" build --target x86_64 >/dev/null 2>&1
# Once to push, then the measured runs.
"$cli" run --target x86_64 --via "ssh://root@127.0.0.1:$port" -- execsnoop --duration 1 >/dev/null 2>&1
times=()
for _ in $(seq "$runs"); do
  start=$(date +%s.%N)
  "$cli" run --target x86_64 --via "ssh://root@127.0.0.1:$port" -- execsnoop --duration 1 2>&1 >/dev/null |
    while IFS= read -r line; do
      case $line in *attached*) date +%s.%N > "$work/attached" ;; esac
    done
  times+=("$(awk -v a="$start" -v b="$(cat "$work/attached")" 'BEGIN { printf "%.2f", b - a }')")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(sed -n "$(( (runs + 1) / 2 ))p" <<<"$sorted")
echo "| ssh loopback, warm (bundle on the board), start to attached | median $median s of $runs ($(tr '\n' ' ' <<<"$sorted")) |"
