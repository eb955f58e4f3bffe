#!/usr/bin/env bash
# ebpf-run against a static libbpf C loader (bench/libbpf-loader/opensnoop_libbpf.c) doing the same work on the
# same bpf/opensnoop.bpf.o of the x86_64 bundle, printed as Markdown tables with the three budgets:
#   1. start-up, exec -> "N programs attached" on stderr: ebpf-run at most 1.2x the libbpf loader (median);
#   2. peak RSS of ebpf-run while streaming events (VmHWM, read under load right before SIGTERM): <= 8 MiB;
#   3. events/s drained and printed (stdout to /dev/null) while bench/load/open_storm overflows the ring
#      buffer: ebpf-run at least 0.9x the libbpf loader (median); lost records counted for both.
# The two loaders alternate run by run. Every run traces only the open_storm process (filter_pid), so the
# printed and lost counts add up to exactly its opens. Needs root, BPF + BTF, syscall tracepoints, gcc and
# the static libraries of libbpf-dev, libelf-dev, zlib1g-dev and libc6-dev.
#
# Usage: scripts/bench-loader.sh
#   BUNDLE=PATH          x86_64 bundle to measure (.tar.gz or unpacked directory); default: build it with
#                        target/release/ebpf-pack (an incremental no-op when it is up to date)
#   STARTUP_RUNS=15      start-up runs per loader
#   TPUT_RUNS=5          throughput runs per loader (the rate is noisy on 2 cores: 3 busy threads)
#   TPUT_SECONDS=5       duration of each load
#   PRODUCERS=2          open_storm threads (one process)
# Timings are wall-clock on this machine; run on an otherwise idle host.
set -euo pipefail
cd "$(dirname "$0")/.."
STARTUP_RUNS=${STARTUP_RUNS:-15}
TPUT_RUNS=${TPUT_RUNS:-5}
TPUT_SECONDS=${TPUT_SECONDS:-5}
PRODUCERS=${PRODUCERS:-2}
export STARTUP_RUNS TPUT_RUNS TPUT_SECONDS PRODUCERS

die() { echo "bench-loader: $*" >&2; exit 1; }
for v in STARTUP_RUNS TPUT_RUNS PRODUCERS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ $TPUT_SECONDS =~ ^[0-9]*\.?[0-9]+$ && ! $TPUT_SECONDS =~ ^[0.]+$ ]] ||
  die "TPUT_SECONDS must be a positive number of seconds, not '$TPUT_SECONDS'"
[ "$(id -u)" -eq 0 ] || die "needs root (loads BPF programs)"
[ -r /sys/kernel/btf/vmlinux ] || die "this kernel has no BTF (/sys/kernel/btf/vmlinux)"
if [ ! -d /sys/kernel/tracing/events ]; then
  mount -t tracefs tracefs /sys/kernel/tracing || die "cannot mount tracefs at /sys/kernel/tracing"
fi
libdir=/usr/lib/x86_64-linux-gnu
for pair in libbpf.a:libbpf-dev libelf.a:libelf-dev libz.a:zlib1g-dev libc.a:libc6-dev; do
  [ -f "$libdir/${pair%%:*}" ] || die "missing $libdir/${pair%%:*}: apt-get install ${pair#*:}"
done

work=$(mktemp -d /tmp/ebpf-pack-bench-loader.XXXXXX)
trap 'rm -rf "$work"' EXIT

bundle=${BUNDLE:-}
if [ -z "$bundle" ]; then
  cargo build --locked --release -q -p ebpf-pack
  if ! target/release/ebpf-pack build --target x86_64 >"$work/build.out" 2>"$work/build.err"; then
    cat "$work/build.err" >&2
    die "ebpf-pack build --target x86_64 failed"
  fi
  bundle=$(awk '{print $2}' "$work/build.out")
  [ -f "$bundle" ] || die "ebpf-pack build --target x86_64 wrote no bundle: $(cat "$work/build.out")"
fi

# A private copy: builds running meanwhile cannot change the files being measured.
mkdir "$work/bundle"
if [ -d "$bundle" ]; then
  cp -r "$bundle/." "$work/bundle/"
else
  tar -xzf "$bundle" -C "$work/bundle" --strip-components=1
fi
if [ ! -x "$work/bundle/ebpf-run" ] || [ ! -f "$work/bundle/bpf/opensnoop.bpf.o" ]; then
  die "$bundle: no ebpf-run and bpf/opensnoop.bpf.o"
fi

cc_loader=(gcc -O2 -Wall -Wextra -static -s -o "$work/opensnoop_libbpf" bench/libbpf-loader/opensnoop_libbpf.c
  -lbpf -lelf -lz)
cc_storm=(gcc -O2 -Wall -Wextra -static -s -pthread -o "$work/open_storm" bench/load/open_storm.c)
"${cc_loader[@]}"
"${cc_storm[@]}"

cat >"$work/harness.py" <<'PY'
"""Runs the measurements and prints the Markdown report. argv: work dir, bundle path, compile lines."""
import os, platform, re, signal, statistics, subprocess, sys, threading, time

work, bundle_label, cc_lines = sys.argv[1:4]
STARTUP_RUNS, TPUT_RUNS = int(os.environ["STARTUP_RUNS"]), int(os.environ["TPUT_RUNS"])
SECONDS, PRODUCERS = float(os.environ["TPUT_SECONDS"]), int(os.environ["PRODUCERS"])
BUNDLE = os.path.join(work, "bundle")
EBPF_RUN, OBJECT = os.path.join(BUNDLE, "ebpf-run"), os.path.join(BUNDLE, "bpf/opensnoop.bpf.o")
C_LOADER, STORM = os.path.join(work, "opensnoop_libbpf"), os.path.join(work, "open_storm")
ATTACHED = re.compile(r"(\d+) programs? attached")
COUNTS = re.compile(r"opensnoop events: (\d+) records printed, (\d+) lost")
TICK = os.sysconf("SC_CLK_TCK")
LOADERS = ("ebpf-run", "libbpf")


def command(name, pid=None):
    """The loader's command line, tracing only process `pid` when given."""
    if name == "ebpf-run":
        return [EBPF_RUN, "opensnoop"] + (["--set", f"filter_pid={pid}"] if pid else [])
    return [C_LOADER] + (["-p", str(pid)] if pid else []) + [OBJECT]


CHILDREN = []  # every process started, killed if the harness stops early


def spawn(cmd, **kwargs):
    p = subprocess.Popen(cmd, **kwargs)
    CHILDREN.append(p)
    return p


def fail(msg):
    sys.exit(f"bench-loader: {msg}")


class Loader:
    """A running loader. A thread reads its stderr and timestamps the "attached" line."""

    def __init__(self, name, pid=None, stdout=subprocess.DEVNULL):
        self.name, self.lines = name, []
        self.attached, self.t_attached = threading.Event(), None
        self.t0 = time.perf_counter()
        self.p = spawn(command(name, pid), cwd=BUNDLE, stdin=subprocess.DEVNULL, stdout=stdout,
                       stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.p.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            if self.t_attached is None and ATTACHED.search(line):
                self.t_attached = time.perf_counter()
                self.attached.set()
            self.lines.append(line)
        self.attached.set()

    def output(self):
        return "\n".join(self.lines)

    def wait_attached(self):
        """Seconds from just before exec to the "attached" line."""
        if not self.attached.wait(60) or self.t_attached is None:
            self.p.kill()
            fail(f"{self.name} did not attach:\n{self.output()}")
        return self.t_attached - self.t0

    def status(self):
        """VmHWM and VmRSS (KiB) and CPU seconds (user + system) so far."""
        with open(f"/proc/{self.p.pid}/status") as f:
            st = {k: int(v.split()[0]) for k, _, v in (l.partition(":") for l in f) if k in ("VmHWM", "VmRSS")}
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        st["cpu"] = (int(fields[11]) + int(fields[12])) / TICK
        return st

    def stop(self):
        """SIGTERM; waits for exit 0 and returns (printed, lost)."""
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail(f"{self.name} did not stop on SIGTERM")
        self.reader.join()
        if self.p.returncode != 0:
            fail(f"{self.name} exited {self.p.returncode}:\n{self.output()}")
        counts = [m for m in map(COUNTS.search, self.lines) if m]
        if not counts:
            fail(f"no count line from {self.name}:\n{self.output()}")
        return int(counts[-1].group(1)), int(counts[-1].group(2))


class Storm:
    """open_storm, started paused (-w) so the loader can be filtered on its pid first."""

    def __init__(self, seconds, threads, opens=None):
        cmd = [STORM, "-w", "-t", str(threads)] + (["-n", str(opens)] if opens else []) + [str(seconds)]
        self.p = spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.p.pid

    def go(self):
        self.p.stdin.write("g")
        self.p.stdin.flush()

    def result(self):
        """(opens, seconds) once it has finished."""
        out, _ = self.p.communicate()
        m = re.search(r"(\d+) opens in ([\d.]+) s", out)
        if self.p.returncode != 0 or not m:
            fail(f"open_storm failed: {out}")
        return int(m.group(1)), float(m.group(2))


def order(rep):
    """Alternates which loader goes first."""
    return LOADERS if rep % 2 == 0 else LOADERS[::-1]


OPENER = """
import os, sys
print("ready", flush=True)
sys.stdin.read(1)
for i in range(200):
    try:
        os.close(os.open(sys.argv[1 + i % (len(sys.argv) - 1)], os.O_RDONLY))
    except OSError:
        pass
"""


def check_same_output():
    """Both loaders at once on one process's 200 opens of paths that need quoting, escapes and wider
    columns (fewer records than the ring buffer holds): the event lines must be the same."""
    odd = os.path.join(work, 'a b"c=d\\e\tf\x01')
    open(odd, "w").close()
    paths = ["/etc/hostname", "/nonexistent", "/etc/" + "x" * 40, odd]
    opener = spawn([sys.executable, "-c", OPENER] + paths, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                   text=True)
    opener.stdout.readline()  # its start-up opens are over
    outs, loaders, events = {}, {}, {}
    for name in LOADERS:
        outs[name] = open(os.path.join(work, f"{name}.out"), "w+")
        loaders[name] = Loader(name, opener.pid, stdout=outs[name])
        loaders[name].wait_attached()
    opener.communicate("g")
    for name in LOADERS:
        printed, lost = loaders[name].stop()
        outs[name].seek(0)
        events[name] = [l for l in outs[name] if l.startswith("opensnoop uid=")]
        if lost or printed < 200 or len(events[name]) != printed:
            fail(f"output check: {name} printed {printed} ({len(events[name])} lines), lost {lost}")
    if events["ebpf-run"] != events["libbpf"]:
        a, b = events["ebpf-run"], events["libbpf"]
        diff = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        fail(f"output check: line {diff + 1} differs:\n" + "".join(e[diff] if diff < len(e) else "(none)\n"
                                                                  for e in (a, b)))
    return len(events["libbpf"]), next(l.rstrip("\n") for l in events["libbpf"] if '"' in l)


def startup():
    times = {n: [] for n in LOADERS}
    for name in LOADERS:  # warm-up (page cache), not counted
        l = Loader(name)
        l.wait_attached()
        l.stop()
    for rep in range(STARTUP_RUNS):
        for name in order(rep):
            l = Loader(name)
            times[name].append(l.wait_attached())
            l.stop()
    return times


def throughput():
    runs = []
    for rep in range(TPUT_RUNS):
        for name in order(rep):
            storm = Storm(SECONDS, PRODUCERS)
            l = Loader(name, storm.pid)
            l.wait_attached()
            at_attach = l.status()
            storm.go()
            time.sleep(SECONDS * 0.8)
            mid = l.status()  # under load
            opens, seconds = storm.result()
            end = l.status()  # right before SIGTERM
            printed, lost = l.stop()
            runs.append(dict(name=name, opens=opens, seconds=seconds, printed=printed, lost=lost,
                             hwm_attach=at_attach["VmHWM"], hwm=end["VmHWM"], rss=mid["VmRSS"],
                             cpu=end["cpu"] - at_attach["cpu"]))
    return runs


def ms(s):
    return f"{s * 1000:.1f}"


def verdict(ok):
    return "met" if ok else "**MISSED**"


def sh(cmd):
    """A command as a shell line, the temporary directory shown as $WORK."""
    return " ".join(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else f"'{a}'" for a in cmd).replace(work, "$WORK")


def size(path):
    return os.stat(path).st_size


def main():
    load_before = os.getloadavg()
    same_opens, sample = check_same_output()
    times = startup()
    runs = throughput()
    load_after = os.getloadavg()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    libbpf_version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libbpf-dev"], capture_output=True,
                                    text=True).stdout or "?"

    print("## Loader benchmark: ebpf-run (aya) vs a static libbpf loader, opensnoop on x86_64")
    print()
    print(f"- machine: {cpu}, {os.cpu_count()} cores, kernel {platform.release()}; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)")
    print(f"- bundle: {bundle_label}; object bpf/opensnoop.bpf.o, {size(OBJECT)} bytes")
    print(f"- stripped static binaries: ebpf-run {size(EBPF_RUN)} bytes ({size(EBPF_RUN) // 1024} KiB), "
          f"opensnoop_libbpf {size(C_LOADER)} bytes ({size(C_LOADER) // 1024} KiB; libbpf {libbpf_version})")
    print(f"- same output: both loaders, attached at once to one process's {same_opens} opens, printed the same "
          f"lines, e.g. `{sample}`")
    print()

    print(f"### 1. Start-up: exec -> \"4 programs attached\" ({STARTUP_RUNS} runs each after a warm-up run, "
          "alternating)")
    print()
    print("| loader | median ms | min ms | max ms |")
    print("|---|---|---|---|")
    for name in LOADERS:
        t = times[name]
        print(f"| {name} | {ms(statistics.median(t))} | {ms(min(t))} | {ms(max(t))} |")
    med = statistics.median(times["ebpf-run"]) / statistics.median(times["libbpf"])
    low = min(times["ebpf-run"]) / min(times["libbpf"])
    print(f"| **ebpf-run / libbpf** | **{med:.2f}x** | {low:.2f}x | |")
    print()
    print(f"Budget: ebpf-run median at most 1.2x the libbpf loader's: {verdict(med <= 1.2)} ({med:.2f}x).")
    print()

    print(f"### 2. Peak RSS while streaming (the throughput runs: {TPUT_RUNS} each)")
    print()
    print("| loader | VmHWM at attach (KiB) | VmHWM before SIGTERM (KiB) | VmRSS under load (KiB) |")
    print("|---|---|---|---|")
    peak = {}
    for name in LOADERS:
        r = [x for x in runs if x["name"] == name]
        peak[name] = max(x["hwm"] for x in r)
        print(f"| {name} | {max(x['hwm_attach'] for x in r)} | {peak[name]} | {max(x['rss'] for x in r)} |")
    print()
    mib = peak["ebpf-run"] / 1024
    print(f"Budget: ebpf-run peak RSS at most 8 MiB: {verdict(mib <= 8)} ({mib:.1f} MiB; "
          f"libbpf loader {peak['libbpf'] / 1024:.1f} MiB). Values are the maximum over the runs.")
    for name in LOADERS:
        if all(x["hwm"] == x["hwm_attach"] for x in runs if x["name"] == name):
            print(f"{name}: the peak was already reached when it attached (start-up), not while streaming.")
    print()

    print(f"### 3. Event throughput: open_storm with {PRODUCERS} thread{'s' if PRODUCERS > 1 else ''} for "
          f"{SECONDS:g} s, stdout to /dev/null ({TPUT_RUNS} run{'s' if TPUT_RUNS > 1 else ''} each, alternating)")
    print()
    print("| run | loader | opens | printed | lost | printed+lost-opens | s | events/s | loader CPU s "
          "| µs CPU/event |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for i, x in enumerate(runs, 1):
        x["rate"] = x["printed"] / x["seconds"]
        x["per_event"] = x["cpu"] / x["printed"] * 1e6
        print(f"| {i} | {x['name']} | {x['opens']} | {x['printed']} | {x['lost']} "
              f"({100 * x['lost'] / x['opens']:.0f}%) | {x['printed'] + x['lost'] - x['opens']} "
              f"| {x['seconds']:.2f} | {x['rate']:.0f} | {x['cpu']:.2f} | {x['per_event']:.2f} |")
    print()
    print("| loader | median events/s | median µs CPU/event |")
    print("|---|---|---|")
    rate, per_event = {}, {}
    for name in LOADERS:
        r = [x for x in runs if x["name"] == name]
        rate[name] = statistics.median(x["rate"] for x in r)
        per_event[name] = statistics.median(x["per_event"] for x in r)
        print(f"| {name} | {rate[name]:.0f} | {per_event[name]:.2f} |")
    ratio = rate["ebpf-run"] / rate["libbpf"]
    cpu_ratio = per_event["libbpf"] / per_event["ebpf-run"]
    print(f"| **ebpf-run / libbpf** | **{ratio:.2f}x** | {cpu_ratio:.2f}x events per CPU-second |")
    print()
    print(f"Budget: ebpf-run at least 0.9x the libbpf loader's events/s: {verdict(ratio >= 0.9)} ({ratio:.2f}x).")
    unsaturated = sorted({x["name"] for x in runs if x["lost"] < 0.01 * x["opens"]})
    if unsaturated:
        print(f"Warning: {', '.join(unsaturated)} lost under 1% of the records in some run: there the rate is "
              "the producer's, not the consumer's; raise PRODUCERS.")
    else:
        print("Every run overflowed the ring buffer (over 1% lost): the rates are the consumers' drain rates.")
    print(f"Loader CPU is user + system time between the attached line and SIGTERM (/proc/PID/stat). With "
          f"{PRODUCERS} producer thread{'s' if PRODUCERS > 1 else ''} and the consumer on {os.cpu_count()} cores, "
          "events/s also depends on the CPU share the scheduler gave the consumer; µs CPU/event does not. "
          f"By that measure ebpf-run drains {cpu_ratio:.2f}x the libbpf loader's events per CPU-second "
          f"(0.9x budget: {verdict(cpu_ratio >= 0.9)}).")
    print()

    print("### Commands")
    print()
    print("```")
    print("# start-up (cwd $WORK/bundle, stdout /dev/null; the stderr line \"4 programs attached\" ends the timing)")
    for name in LOADERS:
        print(sh(command(name)))
    print("# throughput and RSS: the load first (it waits for a byte on stdin), then the loader traces its PID")
    print(sh([STORM, "-w", "-t", str(PRODUCERS), f"{SECONDS:g}"]))
    for name in LOADERS:
        print(sh(command(name, "PID")))
    print("# built with")
    print(cc_lines.replace(work, "$WORK"))
    print("```")


try:
    main()
finally:
    for child in CHILDREN:
        if child.poll() is None:
            child.kill()
            child.wait()
PY

python3 "$work/harness.py" "$work" "$bundle" "${cc_loader[*]}
${cc_storm[*]}"
