#!/usr/bin/env bash
# Regenerates the committed seed corpora of the fuzz targets (fuzz/seeds/<target>/) from real inputs:
# the built-in board files, project files, the toolbox's objects for a little- and a big-endian target,
# their .BTF/.BTF.ext sections, this host's kernel BTF cut to those objects, real bundles and a
# single-file executable (made by `ebpf-pack build` with a tiny static loader so each stays a few KB),
# kernel configs, one-liners and ebpf-run command lines. Run by hand after a format changes; the
# seeds are committed so `make fuzz` and the smoke runs in `make test` need none of this.
#
# Usage: scripts/fuzz-seeds.sh            (from the checkout, as root: it reads /sys/kernel/btf/vmlinux)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seeds=$root/fuzz/seeds
ep=$root/target/release/ebpf-pack
cargo build --locked --release -q -p ebpf-pack
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seed() { # seed TARGET NAME < bytes
  mkdir -p "$seeds/$1"
  cat >"$seeds/$1/$2"
}
u32le() { python3 -c "import sys,struct; sys.stdout.buffer.write(struct.pack('<I', int(sys.argv[1])))" "$1"; }

rm -rf "$seeds"
mkdir -p "$seeds"

# Board and project files.
for f in targets/*.yaml; do seed target_file "$(basename "$f")" <"$f"; done
seed project_file root.yaml <ebpf-pack.yaml
seed project_file init.yaml <templates/init/ebpf-pack.yaml

# Objects: the toolbox built for x86_64 (little-endian) and s390x (big-endian).
"$ep" build --target x86_64 >/dev/null
"$ep" build --target s390x >/dev/null
objects=(opensnoop execsnoop biolatency runqlat tcpconnect profile)
bpftool gen min_core_btf /sys/kernel/btf/vmlinux "$seeds/kernel-min.btf" build/x86_64/stage/bpf/*.bpf.o
for arch in x86_64 s390x; do
  for o in "${objects[@]}"; do
    obj=build/$arch/stage/bpf/$o.bpf.o
    seed object_load "$arch-$o" < <(printf '\377'; cat "$obj")
    seed elf_verify "$arch-$o" <"$obj"
    llvm-objcopy-19 --dump-section .BTF="$work/btf" --dump-section .BTF.ext="$work/ext" "$obj" /dev/null
    seed btf_parse "$arch-$o" <"$work/btf"
    # kernel BTF, the object's .BTF, its .BTF.ext (fuzz_targets/btf_tailor.rs).
    seed btf_tailor "$arch-$o" < <(u32le "$(stat -c %s "$seeds/kernel-min.btf")"; cat "$seeds/kernel-min.btf"
                                   u32le "$(stat -c %s "$work/btf")"; cat "$work/btf"; cat "$work/ext")
    # The object's BTF, a type id, a record of 96 bytes with every byte value that matters (0, 0xff, text).
    for id in 1 2 3 5 8 13 21; do
      seed decode "$arch-$o-$id" < <(u32le "$(stat -c %s "$work/btf")"; cat "$work/btf"; u32le "$id"
                                     printf 'opensnoop\0\0\0\0\0\0\0\377\377\377\377\1\0\0\0%064d' 0)
    done
  done
done
seed btf_parse kernel-min <"$seeds/kernel-min.btf"

# Loaders and bundles: tiny static executables stand in for ebpf-run so each seed stays small.
printf 'void _start(void) { for (;;); }\n' >"$work/tiny.c"
gcc -static -nostdlib -Os -s -o "$work/tiny-x86_64" "$work/tiny.c"
s390x-linux-gnu-gcc -static -nostdlib -Os -s -o "$work/tiny-s390x" "$work/tiny.c"
arm-linux-gnueabihf-gcc -static -nostdlib -Os -s -o "$work/tiny-arm" "$work/tiny.c"
riscv64-linux-gnu-gcc -static -nostdlib -Os -s -o "$work/tiny-riscv64" "$work/tiny.c"
for a in x86_64 s390x arm riscv64; do seed elf_verify "loader-$a" <"$work/tiny-$a"; done
"$ep" init "$work/proj" --name seed >/dev/null
for t in x86_64 s390x; do
  (cd "$work/proj" && "$ep" build --target "$t" --loader "$work/tiny-$t" --single >/dev/null)
  seed bundle "$t.tar.gz" <"$work/proj/dist/seed-0.1.0-$t.tar.gz"
  seed bundle "$t.run" <"$work/proj/dist/seed-0.1.0-$t.run"
  seed embedded "$t.run" <"$work/proj/dist/seed-0.1.0-$t.run"
done
seed manifest_json manifest.json < <(tar -xzOf "$work/proj/dist/seed-0.1.0-x86_64.tar.gz" --wildcards '*/manifest.json')
printf '{"a":[1,-2.5e3,true,false,null],"b":{"c":"\\u00e9\\ud83d\\ude00\\n"}}' | seed manifest_json values.json

# Kernel configs: this host's (plain and gzip, cut to a few KB) and a board file's.
zcat /proc/config.gz >"$work/config.full"
head -c 6000 "$work/config.full" >"$work/config"
seed kernel_config plain <"$work/config"
gzip -9n <"$work/config" | seed kernel_config gzip

# One-liners: the compile table of the one-liner tests (its Rust string literals, unescaped) and the
# guest tier's script.
python3 - "$seeds/oneliner" oneliner/tests/compile_for_boards.rs <<'PY'
import os, re, sys
out, src = sys.argv[1], open(sys.argv[2]).read()
os.makedirs(out, exist_ok=True)
for n, lit in enumerate(re.findall(r'^\s*"((?:[^"\\]|\\.)*)",$', src, re.M | re.S)):
    text = re.sub(r'\\\n\s*', '', lit)
    text = re.sub(r'\\(.)', lambda m: {'n': '\n', 't': '\t'}.get(m.group(1), m.group(1)), text)
    open(os.path.join(out, f'table-{n:02}'), 'w').write(text)
PY
seed oneliner btopens.bt <tests/fixtures/guest-probes/probes/btopens.bt

# ebpf-run command lines (NUL-separated arguments).
i=0
for line in "bpf/opensnoop.bpf.o --duration 5 --format json" "--check --btf btf/vmlinux.btf opensnoop" \
            "execsnoop -x --interval 2 --set target_pid=42" "--list" "run --map-size events=4096 --attach p=vfs_read"; do
  i=$((i + 1)); printf '%s' "$line" | tr ' ' '\0' | seed run_args "line-$i"
done
echo "fuzz-seeds: $(find "$seeds" -type f | wc -l) seeds, $(du -sh "$seeds" | cut -f1) in $seeds"
