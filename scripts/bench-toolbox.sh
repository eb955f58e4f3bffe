#!/usr/bin/env bash
# The toolbox against Debian's libbpf-tools, side by side in one run on the same workload: for
# execsnoop, opensnoop and biolatency, the CPU each costs per event, two ways:
#   tracer   the tracing process's own CPU (user + system, from wait4) per event, less what the same
#            tracer spends started and stopped with no workload (loading, CO-RE, exit): draining,
#            decoding and printing (to /dev/null) for the snoops; reading the histogram for biolatency
#   in-line  the workload's extra CPU per event over a run with no tracer: the BPF programs run in
#            the workload's context, so this is their cost (plus the ring buffer's wakeups)
#   BPF      the tracer's programs' own run time per event, from the kernel's BPF statistics
#            (kernel.bpf_stats_enabled, read with `bpftool prog show`): exact, and free of the noise
#            of the two above
# Runs alternate baseline / ebpf-run / libbpf-tools, ROUNDS times; medians are printed as Markdown.
# Needs root, this kernel's BTF, libbpf-tools (scripts/install-deps.sh installs it), and the x86_64
# bundle (`ebpf-pack build --target x86_64`). Usage: scripts/bench-toolbox.sh [BUNDLE.tar.gz]
#   ROUNDS=5 OPENS=200000 EXECS=2000 READS=20000   workload sizes
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${1:-$(ls dist/ebpf-pack-[0-9]*-x86_64.tar.gz | head -n1)}
die() { echo "bench-toolbox: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (it loads BPF programs)"
for t in execsnoop opensnoop biolatency; do
  [ -x "/usr/sbin/$t" ] || die "no /usr/sbin/$t: apt-get install libbpf-tools (scripts/install-deps.sh does)"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$bundle" -C "$work"
top=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)
gcc -O2 -Wall -Wextra -static -s -pthread -o "$work/open_storm" bench/load/open_storm.c
[ -d /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing
# Per-program run time and count in the kernel, for the BPF column; restored at exit.
stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -qw kernel.bpf_stats_enabled="$stats"; rm -rf "$work"' EXIT
sysctl -qw kernel.bpf_stats_enabled=1
export TOP=$top WORK=$work BUNDLE=$bundle
python3 - <<'PY'
import json, os, resource, signal, statistics, subprocess, sys, time

TOP, WORK = os.environ["TOP"], os.environ["WORK"]
ROUNDS = int(os.environ.get("ROUNDS", "5"))
OPENS = int(os.environ.get("OPENS", "200000"))
EXECS = int(os.environ.get("EXECS", "2000"))
READS = int(os.environ.get("READS", "20000"))

def cpu_of(ru):
    return ru.ru_utime + ru.ru_stime

def run_workload(argv):
    """Runs a workload to its end; its CPU seconds (it and its children)."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execvp(argv[0], argv)
    _, status, ru = os.wait4(pid, 0)
    if status != 0:
        sys.exit(f"bench-toolbox: workload {argv} failed: {status}")
    return cpu_of(ru)

class Tracer:
    def __init__(self, argv, ready):
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        seen = ""
        if ready:
            while time.time() < deadline:
                line = self.p.stderr.readline()
                seen += line
                if ready in line or not line:
                    break
        time.sleep(1.0)
        if self.p.poll() is not None:
            sys.exit(f"bench-toolbox: {argv} exited early: {seen}{self.p.stderr.read()}")

    def bpf_ns(self):
        """Run time of this tracer's BPF programs so far, ns (kernel.bpf_stats_enabled): its programs
        are the prog_id of its open fds (/proc/PID/fdinfo)."""
        ids = set()
        fdinfo = f"/proc/{self.p.pid}/fdinfo"
        for fd in os.listdir(fdinfo):
            try:
                for line in open(os.path.join(fdinfo, fd)):
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
            except OSError:
                pass
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True).stdout
        return sum(p.get("run_time_ns", 0) for p in json.loads(out or "[]") if p.get("id") in ids)

    def stop(self):
        time.sleep(0.5)
        self.ns = self.bpf_ns()
        self.p.send_signal(signal.SIGINT)
        _, status, ru = os.wait4(self.p.pid, 0)
        return cpu_of(ru)

def loop_device():
    img = os.path.join(WORK, "disk.img")
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    out = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", img], capture_output=True, text=True, check=True)
    return out.stdout.strip()

dev = loop_device()
execs = os.path.join(WORK, "execs.sh")
with open(execs, "w") as f:
    f.write(f"i=0; while [ $i -lt {EXECS} ]; do /bin/true; i=$((i+1)); done\n")

TOOLS = {
    # tool: (workload argv, events it makes, ebpf-run args, libbpf-tools argv)
    "opensnoop": ([os.path.join(WORK, "open_storm"), "-n", str(OPENS), "60"], OPENS, ["opensnoop"], ["/usr/sbin/opensnoop"]),
    "execsnoop": (["sh", execs], EXECS, ["execsnoop"], ["/usr/sbin/execsnoop"]),
    "biolatency": (["dd", f"if={dev}", "of=/dev/null", "bs=4k", f"count={READS}", "iflag=direct", "status=none"], READS, ["biolatency"], ["/usr/sbin/biolatency"]),
}

results = {}
try:
    for tool, (workload, events, ours, theirs) in TOOLS.items():
        rows = {"baseline": [], "ebpf-run": [], "libbpf-tools": []}
        tracer_cpu = {"ebpf-run": [], "libbpf-tools": []}
        idle_cpu = {"ebpf-run": [], "libbpf-tools": []}
        bpf_ns = {"ebpf-run": [], "libbpf-tools": []}
        for _ in range(ROUNDS):
            rows["baseline"].append(run_workload(workload))
            for name, argv, ready in (("ebpf-run", [os.path.join(TOP, "ebpf-run")] + ours, "attached"),
                                      ("libbpf-tools", theirs, None)):
                t = Tracer(argv, ready)
                rows[name].append(run_workload(workload))
                tracer_cpu[name].append(t.stop())
                bpf_ns[name].append(t.ns)
                idle_cpu[name].append(Tracer(argv, ready).stop())
        base = statistics.median(rows["baseline"])
        results[tool] = {
            name: ((statistics.median(tracer_cpu[name]) - statistics.median(idle_cpu[name])) / events * 1e6,
                   (statistics.median(rows[name]) - base) / events * 1e6)
            for name in tracer_cpu
        }
        results[tool]["events"] = events
        results[tool]["bpf"] = {n: statistics.median(v) / events for n, v in bpf_ns.items()}
        results[tool]["idle"] = {n: statistics.median(v) * 1e3 for n, v in idle_cpu.items()}
finally:
    subprocess.run(["losetup", "-d", dev])

size = lambda p: os.path.getsize(p)
print(f"## Toolbox vs libbpf-tools {subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'libbpf-tools'], capture_output=True, text=True).stdout}, x86_64, kernel {os.uname().release}")
print()
print(f"- bundle {os.environ['BUNDLE']}; ebpf-run {size(os.path.join(TOP, 'ebpf-run')):,} bytes; medians of {ROUNDS} alternating rounds")
print(f"- workloads: opensnoop {OPENS:,} opens (bench/load/open_storm), execsnoop {EXECS:,} execs of /bin/true, biolatency {READS:,} direct 4 KiB reads of a loop device")
print()
print("| tool | events | ebpf-run: tracer µs/event | libbpf-tools: tracer µs/event | ebpf-run: in-line µs/event | libbpf-tools: in-line µs/event |")
print("|---|---|---|---|---|---|")
for tool, r in results.items():
    print(f"| {tool} | {r['events']:,} | {r['ebpf-run'][0]:.2f} | {r['libbpf-tools'][0]:.2f} | {r['ebpf-run'][1]:.2f} | {r['libbpf-tools'][1]:.2f} |")
print()
print("BPF programs' run time per event (kernel.bpf_stats_enabled), ns:")
print()
print("| tool | ebpf-run | libbpf-tools |")
print("|---|---|---|")
for tool, r in results.items():
    print(f"| {tool} | {r['bpf']['ebpf-run']:.0f} | {r['bpf']['libbpf-tools']:.0f} |")
print()
print("CPU of a start and stop with no workload (subtracted above), ms:")
print()
print("| tool | ebpf-run | libbpf-tools |")
print("|---|---|---|")
for tool, r in results.items():
    print(f"| {tool} | {r['idle']['ebpf-run']:.1f} | {r['idle']['libbpf-tools']:.1f} |")
PY
