#!/usr/bin/env bash
# Corpus benchmark of objects written for libbpf by others: how many ebpf-run loads and attaches on
# this kernel, and every refusal's reason grouped by cause. Nothing may crash (a signal) or hang (the
# timeout): either fails the script.
#
# Usage: scripts/bench-corpus.sh [DIR]    (as root)
#   DIR: a folder of BPF objects (*.o, searched recursively). Without it, the objects embedded in the
#   skeletons of Debian's libbpf-tools (/usr/sbin, scripts/install-deps.sh installs the package) are
#   carved out into ~/.cache/ebpf-pack/corpus/libbpf-tools/ (kept out of the repository).
# Env: EBPF_RUN (default target/release/ebpf-run, built if missing), CORPUS_SECS (default 1),
#   CORPUS_TIMEOUT (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${CORPUS_SECS:-1}
limit=${CORPUS_TIMEOUT:-30}
loader=${EBPF_RUN:-target/release/ebpf-run}
if [ ! -x "$loader" ]; then
  cargo build --locked --release -p ebpf-run >&2
fi
[ "$(id -u)" -eq 0 ] || { echo "bench-corpus: needs root (it loads BPF programs)" >&2; exit 1; }
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true

dir=${1:-}
if [ -z "$dir" ]; then
  dir="${EBPF_PACK_CACHE:-$HOME/.cache/ebpf-pack}/corpus/libbpf-tools"
  mkdir -p "$dir"
  # An object is the ELF whose e_machine is EM_BPF (247) inside a skeleton binary; its length is where
  # its section header table ends.
  python3 - "$dir" <<'EOF'
import glob, os, struct, sys
out = sys.argv[1]
for exe in sorted(glob.glob("/usr/sbin/*")):
    try:
        data = open(exe, "rb").read()
    except OSError:
        continue
    if not data.startswith(b"\x7fELF"):
        continue
    at = 1
    while (at := data.find(b"\x7fELF", at)) >= 0:
        if data[at + 4] == 2 and data[at + 5] == 1 and struct.unpack_from("<H", data, at + 18)[0] == 247:
            shoff, = struct.unpack_from("<Q", data, at + 0x28)
            shentsize, shnum = struct.unpack_from("<HH", data, at + 0x3A)
            end = at + shoff + shentsize * shnum
            open(os.path.join(out, os.path.basename(exe) + ".bpf.o"), "wb").write(data[at:end])
        at += 4
EOF
fi
mapfile -t objects < <(find "$dir" -name '*.o' -type f | sort)
[ "${#objects[@]}" -gt 0 ] || { echo "bench-corpus: no objects in $dir" >&2; exit 1; }

kernel=$(uname -r)
ran=0 refused=0 broken=0
declare -A causes=()
declare -A examples=()
for obj in "${objects[@]}"; do
  name=$(basename "$obj" .o)
  set +e
  err=$(timeout -k 5 "$limit" "$loader" "$obj" --duration "$secs" 2>&1 >/dev/null)
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    ran=$((ran + 1))
    skipped=$(grep -c '^ebpf-run: skipped: ' <<<"$err" || true)
    [ "$skipped" -eq 0 ] || echo "ran     $name (skipped $skipped programs)" >&2
    [ "$skipped" -ne 0 ] || echo "ran     $name" >&2
    continue
  fi
  if [ "$rc" -ge 124 ]; then
    broken=$((broken + 1))
    echo "BROKEN  $name: exit $rc (timeout or signal)" >&2
    continue
  fi
  refused=$((refused + 1))
  line=$(grep -m1 '^ebpf-run: error: ' <<<"$err" || echo "ebpf-run: error: (no message, exit $rc)")
  # The cause: the message without the probe, program and object names, numbers and paths.
  cause=$(sed -E -e 's/^ebpf-run: error: //' -e 's/probe [^ :]+: //' -e 's/program `[^`]*`/program/g' \
    -e 's/(k|kret|u|uret)probe [A-Za-z0-9_.]+/\1probe FUNC/g' \
    -e 's/\([^)]*\)//g' -e 's/`[^`]*`/X/g' -e 's#/[^ :]+#PATH#g' -e 's/[0-9]+/N/g' -e 's/  +/ /g' <<<"$line")
  causes[$cause]=$(( ${causes[$cause]:-0} + 1 ))
  examples[$cause]="${examples[$cause]:-}${examples[$cause]:+, }$name"
  echo "refused $name: ${line#ebpf-run: error: }" >&2
done

total=${#objects[@]}
echo "Corpus: $total objects from $dir on kernel $kernel ($(uname -m)), ebpf-run --duration $secs"
echo
echo "| outcome | objects |"
echo "|---|---|"
echo "| load and attach (exit 0) | $ran |"
echo "| refused with a reason | $refused |"
echo "| crash or hang | $broken |"
echo
echo "| refusals by cause | objects | which |"
echo "|---|---|---|"
for cause in "${!causes[@]}"; do
  printf '%s\t%s\t%s\n' "${causes[$cause]}" "$cause" "${examples[$cause]}"
done | sort -t$'\t' -k1,1nr -k2 | while IFS=$'\t' read -r n cause which; do
  echo "| $cause | $n | $which |"
done
[ "$broken" -eq 0 ] || { echo "bench-corpus: $broken objects crashed or hung ebpf-run" >&2; exit 1; }
