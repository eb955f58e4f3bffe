#!/usr/bin/env bash
# Checks buildroot-pkg/ against a Buildroot source tree: Buildroot's own utils/check-package on every
# file, every BR2_ symbol the tree uses defined (by Buildroot or by the tree), and for each defconfig:
# `make <defconfig>` without Kconfig warnings, savedefconfig identical to the committed file,
# show-info listing the tree's packages with their dependencies, host-llvm built with the BPF backend.
# Nothing is downloaded or built. Needs python3 with the `magic` module (Debian: python3-magic).
#
#   scripts/check-buildroot.sh /path/to/buildroot [OUTPUT_BASE]
#
# Get a Buildroot tree with e.g. `git clone https://gitlab.com/buildroot.org/buildroot.git`.
# Output folders go to OUTPUT_BASE (default: a temporary folder), one per defconfig.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -x "$1/utils/check-package" ]; then
    echo "usage: $0 BUILDROOT_DIR [OUTPUT_BASE]" >&2
    echo "  BUILDROOT_DIR must be a Buildroot source tree (it has utils/check-package)" >&2
    exit 2
fi
BR=$(cd "$1" && pwd)
TREE=$(cd "$(dirname "$0")/../buildroot-pkg" && pwd)
OUT=${2:-$(mktemp -d /tmp/check-buildroot.XXXXXX)}
mkdir -p "$OUT"
fail=0

step() { printf '\n== %s\n' "$*"; }

# utils/check-package is a python3 script that imports `magic`; use a python3 that has it.
PY=""
for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import magic' 2>/dev/null; then
        PY=$candidate
        break
    fi
done
if [ -z "$PY" ]; then
    echo "error: no python3 with the magic module; install python3-magic (Debian) or python-magic (pip)" >&2
    exit 3
fi

step "Buildroot $(git -C "$BR" rev-parse HEAD 2>/dev/null || echo '(not a git checkout)')"

step "utils/check-package -b on every file of buildroot-pkg/"
mapfile -t files < <(find "$TREE" -type f | sort)
if ! (cd "$BR" && "$PY" utils/check-package -b "${files[@]}"); then
    fail=1
fi

step "every BR2_ symbol used is defined (README.md's example package aside)"
mapfile -t used < <(grep -ohE '\bBR2_[A-Za-z0-9_]+' "${files[@]}" --exclude='*.md' | grep -vE '^BR2_EXTERNAL(_|$)' | sort -u)
missing=0
for sym in "${used[@]}"; do
    if ! grep -rqE "^[[:space:]]*(menu)?config[[:space:]]+${sym}\$" \
        --include='Config.*' --include='*.in' "$BR" "$TREE"; then
        echo "undefined: $sym"
        missing=1
    fi
done
if [ $missing -eq 0 ]; then
    echo "${#used[@]} symbols, all defined"
else
    fail=1
fi

for defconfig in "$TREE"/configs/*_defconfig; do
    name=$(basename "$defconfig")
    out="$OUT/${name%_defconfig}"
    step "make BR2_EXTERNAL=$TREE O=$out $name"
    log=$(make -C "$BR" BR2_EXTERNAL="$TREE" O="$out" "$name" 2>&1)
    if grep -qi 'warning' <<<"$log"; then
        grep -i 'warning' <<<"$log"
        fail=1
    else
        echo "no Kconfig warnings"
    fi
    make -s -C "$BR" BR2_EXTERNAL="$TREE" O="$out" savedefconfig BR2_DEFCONFIG="$out/saved_defconfig" >/dev/null
    if diff -u "$defconfig" "$out/saved_defconfig"; then
        echo "savedefconfig reproduces $name"
    else
        fail=1
    fi
    make -s -C "$BR" BR2_EXTERNAL="$TREE" O="$out" show-info >"$out/show-info.json"
    if ! "$PY" - "$out/show-info.json" <<'EOF'; then
import json, sys
info = json.load(open(sys.argv[1]))
ok = True
for pkg in ("host-ebpf-pack", "ebpf-run", "ebpf-pack-probes"):
    p = info.get(pkg)
    if p is None:
        print(f"{pkg}: not in show-info")
        ok = False
        continue
    print(f"{pkg} {p['version']}: {' '.join(p['dependencies'])}")
need = {"host-ebpf-pack", "ebpf-run", "linux", "host-clang", "host-llvm", "host-bpftool", "host-pahole"}
deps = set(info.get("ebpf-pack-probes", {}).get("dependencies", []))
if not need <= deps:
    print(f"ebpf-pack-probes lacks dependencies: {sorted(need - deps)}")
    ok = False
sys.exit(0 if ok else 1)
EOF
        fail=1
    fi
    targets=$(make -s -C "$BR" BR2_EXTERNAL="$TREE" O="$out" printvars VARS=HOST_LLVM_CONF_OPTS |
        grep -oE 'LLVM_TARGETS_TO_BUILD="[^"]*"')
    echo "host-llvm: $targets"
    if ! grep -q 'BPF' <<<"$targets"; then
        echo "host-llvm is built without the BPF backend"
        fail=1
    fi
done

if [ $fail -ne 0 ]; then
    printf '\nFAILED (outputs in %s)\n' "$OUT"
    exit 1
fi
printf '\nbuildroot-pkg: all checks passed (outputs in %s)\n' "$OUT"
