#!/usr/bin/env bash
# One-liners side by side with bpftrace, on this host as the board, printed as Markdown tables:
#   1. host compile time of the one-liner: the front end (parse, check, C: cargo bench of
#      ebpf-pack-oneliner), clang on the generated C with the compile step's flags, and a whole warm
#      `ebpf-pack run --via local -e` (build check, bundle, push, run 1 s) minus its 1 s;
#   2. on the target: start-up (exec -> every probe attached: ebpf-run's "attached" line, bpftrace's
#      BEGIN) and peak RSS (VmHWM at the end) of ebpf-run on the compiled object against
#      `bpftrace -e` on the same program;
#   3. the on-board size of each: ebpf-run + the object, against bpftrace and the shared libraries it
#      loads (ldd, symlinks resolved, each counted once).
# Needs root, BPF + BTF, tracefs, clang-19 and Debian's bpftrace (scripts/install-deps.sh).
#
# Usage: scripts/bench-oneliner.sh     RUNS=7 (start-up runs per tool)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench-oneliner: RUNS must be a positive integer" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-oneliner: needs root (loads BPF programs)" >&2; exit 1; }
command -v bpftrace >/dev/null || { echo "bench-oneliner: no bpftrace (scripts/install-deps.sh installs it)" >&2; exit 1; }
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
program='tracepoint:syscalls:sys_enter_openat { @[comm] = count(); @h = hist(args->flags); }'

work=$(mktemp -d /tmp/ebpf-pack-bench-oneliner.XXXXXX)
trap 'rm -rf "$work"' EXIT
cargo build --locked --release -q -p ebpf-pack
cli=target/release/ebpf-pack

echo "## One-liners against bpftrace ($(uname -r), $(nproc) CPUs, bpftrace $(bpftrace --version | awk '{print $2}'))"
echo
echo "Program: \`$program\`"
echo

# 1. Host compile time.
front=$(cargo bench --locked -q -p ebpf-pack-oneliner --bench compile 2>/dev/null | awk '/^front end/ {print $3, $4}')
# A first run builds (and warms) the run bundle; the measured runs only recompile the one-liner.
"$cli" run --target x86_64 --via local -e "$program" -- --duration 1 >/dev/null 2>"$work/run.err" || {
  cat "$work/run.err" >&2; exit 1; }
c=build/x86_64/oneliner/oneliner.bpf.c
clang_ms=$(python3 - "$c" <<'EOF'
import glob, os, subprocess, sys, time
c = sys.argv[1]
inc = sorted(glob.glob(os.path.expanduser("~/.cache/ebpf-pack/assets/*/include")), key=os.path.getmtime)[-1]
cmd = ["clang-19", "-g", "-O2", "-target", "bpfel", "-mcpu=v3", "-D__TARGET_ARCH_x86", "-Wall", "-Werror",
       "-I", inc, "-I", inc + "/x86_64", "-c", c, "-o", "/dev/null"]
best = []
for _ in range(5):
    t = time.perf_counter(); subprocess.run(cmd, check=True); best.append(time.perf_counter() - t)
best.sort(); print(f"{best[len(best)//2]*1000:.0f}")
EOF
)
e2e=()
for i in 1 2 3; do
  # A new program each time (a different map name): the one-liner is recompiled and rebundled.
  p="${program/@h/@h$i}"
  s=$(date +%s%N)
  "$cli" run --target x86_64 --via local -e "$p" -- --duration 1 >/dev/null 2>>"$work/run.err"
  e2e+=($(( ($(date +%s%N) - s) / 1000000 - 1000 )))
done
e2e_ms=$(printf '%s\n' "${e2e[@]}" | sort -n | sed -n 2p)
echo "| host step | time |"
echo "|---|---|"
echo "| front end: parse, check, write C (median of cargo bench) | ${front:-n/a} |"
echo "| clang-19 on the generated C (median of 5) | ${clang_ms} ms |"
echo "| whole warm \`ebpf-pack run --via local -e\` minus its 1 s run (median of 3) | ${e2e_ms} ms |"
echo

# 2. On the target: start-up and peak RSS.
bundle=$(ls -t dist/ebpf-pack-run-*-x86_64.tar.gz | head -1)
mkdir "$work/b" && tar -xzf "$bundle" -C "$work/b"
top=$(ls -d "$work"/b/*/)
obj="$top/bpf/oneliner.bpf.o"
python3 - "$top/ebpf-run" "$obj" "$program" "$RUNS" <<'EOF'
import os, signal, statistics, subprocess, sys, time
run, obj, program, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def measure(cmd, ready, stream):
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pipe = p.stderr if stream == "err" else p.stdout
    while True:
        line = pipe.readline().decode(errors="replace")
        if not line:
            raise SystemExit(f"{cmd[0]} ended before it was ready")
        if ready in line:
            break
    up = time.perf_counter() - t
    time.sleep(0.5)
    hwm = 0
    with open(f"/proc/{p.pid}/status") as f:
        for l in f:
            if l.startswith("VmHWM:"):
                hwm = int(l.split()[1])
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=30)
    return up * 1000, hwm

ours = [measure([run, obj], "attached", "err") for _ in range(runs)]
theirs = [measure(["bpftrace", "-e", 'BEGIN { printf("ready\\n"); } ' + program], "ready", "out") for _ in range(runs)]
med = lambda xs, i: statistics.median(x[i] for x in xs)
print("| on the target (this host) | ebpf-run + object | bpftrace -e | ratio |")
print("|---|---|---|---|")
a, b = med(ours, 0), med(theirs, 0)
print(f"| start-up to attached, median of {runs} | {a:.0f} ms | {b:.0f} ms | {b/a:.1f}x |")
a, b = med(ours, 1), med(theirs, 1)
print(f"| peak RSS (VmHWM) | {a/1024:.1f} MiB | {b/1024:.1f} MiB | {b/a:.1f}x |")
EOF
echo

# 3. On-board size.
ours=$(( $(stat -c %s "$top/ebpf-run") + $(stat -c %s "$obj") ))
theirs=$(for f in $(command -v bpftrace) $(ldd "$(command -v bpftrace)" | awk '/=>/ {print $3} /^\t\// {print $1}'); do
  readlink -f "$f"; done | sort -u | xargs stat -L -c %s | awk '{s += $1} END {print s}')
echo "| on-board size | bytes |"
echo "|---|---|"
echo "| ebpf-run (static) + the one-liner's object | $ours |"
echo "| bpftrace + the shared libraries it loads (LLVM, clang, BCC, ...) | $theirs |"
