#!/usr/bin/env bash
# Regenerates probes/include/<arch>/vmlinux.h from the BTF of real Debian kernels, and keeps that raw BTF in
# the cache as ${EBPF_PACK_CACHE:-$HOME/.cache/ebpf-pack}/kernels/<arch>/vmlinux.btf for other tools
# (`bpftool gen min_core_btf`, the loader's --btf, tests).
#
# Where each arch's BTF comes from (the version is never hard-coded: the flavour metapackage is resolved to the
# ABI package it currently depends on, e.g. linux-image-arm64 -> linux-image-6.1.0-NN-arm64):
#   x86_64   Debian 12 bookworm amd64   `linux-image-<abi>-amd64`: /boot/vmlinuz is a bzImage; its payload (found
#            through the setup header's payload_offset/payload_length, xz-compressed in Debian) is decompressed
#            and the BTF blob (.BTF, kernel built with CONFIG_DEBUG_INFO_BTF=y) is cut out by its 0xeB9F header.
#   arm64    Debian 12 bookworm arm64   `linux-image-<abi>-arm64`: /boot/vmlinuz is an uncompressed arm64 Image;
#            the BTF blob is cut out of it by its 0xeB9F header.
#   arm      Debian 12 bookworm armhf   `linux-image-<abi>-armmp-dbg`: the armmp kernel is built WITHOUT BTF, so
#            the DWARF of the -dbg package's /usr/lib/debug/boot/vmlinux-<abi>-armmp is converted with
#            `pahole --btf_gen_floats --btf_encode_detached` (~40 s). 32-bit: long and pointers are 4 bytes.
#   riscv64  Debian 13 trixie riscv64   `linux-image-<abi>-riscv64` (Debian 12 has no riscv64 port): its
#            /boot/vmlinux-<abi>-riscv64 is an uncompressed RISC-V EFI Image with BTF; cut out by the header.
#   s390x    Debian 12 bookworm s390x   `linux-image-<abi>-s390x-dbg`: the s390x kernel is built WITHOUT BTF,
#            so pahole converts the -dbg vmlinux's DWARF. Big-endian: pahole writes big-endian BTF (kept as
#            is in vmlinux.btf, which is what a BE target wants); bpftool reads either byte order.
# If a flavour ever ships BTF in its -dbg vmlinux (.BTF section), that section is used instead of pahole.
#
# apt is run against a private state per arch (sources list, lists, package cache under the cache dir, passed
# with -o Dir::Etc::sourcelist=… -o Dir::State::Lists=… -o APT::Architecture=…), so no `dpkg
# --add-architecture`, no root, and the system's apt state is never changed. Downloads go to
# <cache>/kernels/<arch>/ and are reused; a BTF already made from the same package version is not remade.
#
# Usage: scripts/gen-vmlinux.sh [--offline] [ARCH...]     ARCH in: x86_64 arm64 arm riscv64 s390x (default all)
#   --offline   do not run `apt-get update`/download; use what the cache already holds
# Environment: EBPF_PACK_CACHE, DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR
#   (default http://deb.debian.org/debian-security), BPFTOOL (bpftool), PAHOLE (pahole), PYTHON (python3).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root="${EBPF_PACK_CACHE:-$HOME/.cache/ebpf-pack}/kernels"
# shellcheck source=scripts/debian-apt.sh
. "$(dirname "$(readlink -f "$0")")/debian-apt.sh"
bpftool="${BPFTOOL:-bpftool}"
pahole="${PAHOLE:-pahole}"
python="${PYTHON:-python3}"

all_arches=(x86_64 arm64 arm riscv64 s390x)
# arch -> "debian-arch suite metapackage method bits endian"; method: image (BTF inside the kernel image
# package) or dbg (DWARF of the -dbg package through pahole).
declare -A spec=(
  [x86_64]="amd64   bookworm linux-image-amd64   image 64 little"
  [arm64]="arm64    bookworm linux-image-arm64   image 64 little"
  [arm]="armhf      bookworm linux-image-armmp   dbg   32 little"
  [riscv64]="riscv64 trixie  linux-image-riscv64 image 64 little"
  [s390x]="s390x    bookworm linux-image-s390x   dbg   64 big"
)

die() { echo "gen-vmlinux: error: $*" >&2; exit 1; }
log() { echo "gen-vmlinux: $*" >&2; }

offline=0
arches=()
for a in "$@"; do
  case "$a" in
    --offline) offline=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) [ -n "${spec[$a]+x}" ] || die "unknown arch '$a' (known: ${all_arches[*]})"; arches+=("$a") ;;
  esac
done
[ "${#arches[@]}" -gt 0 ] || arches=("${all_arches[@]}")

for tool in apt-get apt-cache dpkg-deb tar "$bpftool" "$python"; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (scripts/install-deps.sh installs it)"
done

cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

# extract_btf IN OUT: writes the vmlinux BTF found in IN (ELF .BTF section, bzImage, gzip/xz/zstd-compressed
# or raw kernel Image) to OUT. Exit status 3 means "this file has no BTF".
extract_btf() {
  "$python" - "$1" "$2" <<'PY'
import bz2, gzip, lzma, shutil, struct, subprocess, sys, zlib

src, dst = sys.argv[1], sys.argv[2]
data = open(src, 'rb').read()

def elf_section(data, wanted):
    """Bytes of section `wanted` of an ELF file (32/64-bit, either byte order), or None."""
    cls, enc = data[4], data[5]
    e = '<' if enc == 1 else '>'
    if cls == 2:
        shoff, = struct.unpack_from(e + 'Q', data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(e + 'HHH', data, 0x3a)
        fmt, name_i, off_i, size_i = e + 'IIQQQQIIQQ', 0, 4, 5
    else:
        shoff, = struct.unpack_from(e + 'I', data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(e + 'HHH', data, 0x2e)
        fmt, name_i, off_i, size_i = e + 'IIIIIIIIII', 0, 4, 5
    secs = [struct.unpack_from(fmt, data, shoff + i * shentsize) for i in range(shnum)]
    stro = secs[shstrndx][off_i]
    for s in secs:
        name = data[stro + s[name_i]:data.index(b'\0', stro + s[name_i])].decode()
        if name == wanted and s[1] != 8:  # not SHT_NOBITS
            return data[s[off_i]:s[off_i] + s[size_i]]
    return None

def decompress(blob):
    """Decompress a kernel payload by its magic; trailing bytes (size footer, padding) are ignored."""
    if blob[:3] == b'\x1f\x8b\x08':
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(blob)
    if blob[:6] == b'\xfd7zXZ\x00':
        return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(blob)
    if blob[:3] == b'\x5d\x00\x00':
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(blob)
    if blob[:3] == b'BZh':
        return bz2.BZ2Decompressor().decompress(blob)
    for magic, tool in ((b'\x28\xb5\x2f\xfd', 'zstd'), (b'\x02\x21\x4c\x18', 'lz4')):
        if blob[:4] == magic:
            if not shutil.which(tool):
                sys.exit(f'payload is {tool}-compressed but {tool} is not installed')
            r = subprocess.run([tool, '-dc'], input=blob, capture_output=True)
            return r.stdout  # a non-zero exit for trailing garbage is fine as long as output came out
    sys.exit(f'unknown payload compression (magic {blob[:6].hex()})')

how = 'raw scan'
if data[:4] == b'\x7fELF':
    sec = elf_section(data, '.BTF')
    if sec is None:
        print(f'{src}: ELF without a .BTF section', file=sys.stderr)
        sys.exit(3)
    open(dst, 'wb').write(sec)
    print(f'{len(sec)} bytes from the .BTF section')
    sys.exit(0)
if data[0x202:0x206] == b'HdrS':  # x86 bzImage: boot protocol >= 2.08 gives the payload's place
    setup_sects = data[0x1f1] or 4
    pm = (setup_sects + 1) * 512
    off, length = struct.unpack_from('<II', data, 0x248)
    data = decompress(data[pm + off:pm + off + length])
    how = f'bzImage payload ({len(data)} bytes decompressed)'
elif data[:3] == b'\x1f\x8b\x08':
    data = decompress(data)
    how = 'gzip-compressed image'

cands = []
for e, magic in (('<', b'\x9f\xeb\x01\x00'), ('>', b'\xeb\x9f\x01\x00')):
    i = data.find(magic)
    while i >= 0:
        if i + 24 <= len(data):
            hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(e + '5I', data, i + 4)
            end = i + hdr_len + str_off + str_len
            if (hdr_len == 24 and type_off == 0 and str_off == type_len and 0 < type_len < 256 << 20
                    and 0 < str_len < 64 << 20 and end <= len(data)):
                strs = data[i + hdr_len + str_off:end]
                if strs[:1] == b'\0' and strs[-1:] == b'\0':
                    cands.append((end - i, i, e))
        i = data.find(magic, i + 1)
if not cands:
    print(f'{src}: no BTF header (0xeB9F) found ({how})', file=sys.stderr)
    sys.exit(3)
size, start, e = max(cands)
open(dst, 'wb').write(data[start:start + size])
print(f'{size} bytes at offset {start:#x} ({how}, {"LE" if e == "<" else "BE"}, {len(cands)} candidate(s))')
PY
}

# check_btf FILE BITS ENDIAN: the BTF is a whole vmlinux BTF of the expected word size and byte order.
check_btf() {
  local f=$1 bits=$2 endian=$3 magic want_long
  magic=$(od -An -tx1 -N2 "$f" | tr -d ' ')
  case "$endian:$magic" in little:9feb|big:eb9f) ;; *) die "$f: BTF byte order $magic, expected $endian-endian" ;; esac
  want_long=$((bits / 8))
  "$bpftool" btf dump file "$f" >"$f.txt" || die "$f: bpftool cannot read this BTF"
  grep -q "INT 'long int' size=$want_long " "$f.txt" \
    || die "$f: 'long int' is not $want_long bytes in this BTF (expected a $bits-bit kernel)"
  grep -q "STRUCT 'task_struct' size=" "$f.txt" || die "$f: no struct task_struct"
  rm -f "$f.txt"
}

gen_arch() {
  local arch=$1 debarch suite meta method bits endian
  read -r debarch suite meta method bits endian <<<"${spec[$arch]}"
  local dir="$cache_root/$arch" apt
  apt="$dir/apt"
  debian_apt_setup "$apt" "$debarch" "$suite"

  [ "$offline" -eq 1 ] || debian_apt_update "$arch"
  local abi_pkg pkg version
  abi_pkg=$(apt-cache "${aptopts[@]}" depends "$meta" 2>/dev/null \
    | sed -n 's/^ *Depends: \(linux-image-[^ ]*\).*/\1/p' | head -n1) || true
  [ -n "$abi_pkg" ] || die "$arch: cannot resolve $meta in Debian $suite ($debarch) — apt index missing?$( \
    [ "$offline" -eq 1 ] && echo ' (--offline: run once without it)'); see $apt/update.log"
  pkg=$abi_pkg
  [ "$method" = image ] || pkg="$abi_pkg-dbg"
  version=$(apt-cache "${aptopts[@]}" show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n1) || true
  [ -n "$version" ] || die "$arch: $pkg (from $meta) has no candidate version in Debian $suite ($debarch)"
  local source="$pkg $version" deb="$dir/${pkg}_${version//:/%3a}_${debarch}.deb"

  local btf="$dir/vmlinux.btf"
  if [ -s "$btf" ] && [ "$(cat "$dir/vmlinux.btf.source" 2>/dev/null)" = "$source" ]; then
    log "$arch: $btf already made from $source"
  else
    if [ ! -s "$deb" ]; then
      [ "$offline" -eq 0 ] || die "$arch: $deb is not in the cache (--offline)"
      log "$arch: downloading $pkg $version ($debarch, Debian $suite)"
      (cd "$dir" && apt-get "${aptopts[@]}" -qq download "$pkg=$version") || die "$arch: apt-get download $pkg=$version failed"
      [ -s "$deb" ] || die "$arch: download did not produce $deb"
    fi
    # Older versions of this package are of no further use.
    find "$dir" -maxdepth 1 -name "${pkg}_*.deb" ! -name "$(basename "$deb")" -delete
    local tmp
    tmp=$(mktemp -d "$dir/tmp.XXXXXX")
    cleanup+=("$tmp")
    local pattern='./boot/vmlinu[xz]-*'
    [ "$method" = image ] || pattern='./usr/lib/debug/boot/vmlinux-*'
    # Not `dpkg-deb -c` first: listing a 600 MB -dbg package means decompressing all of it (~30 s). tar stops
    # after the first match (--occurrence) and dpkg-deb then dies of SIGPIPE, which is expected.
    dpkg-deb --fsys-tarfile "$deb" 2>/dev/null | tar -x -C "$tmp" --wildcards --occurrence=1 "$pattern" || true
    local member
    member=$(cd "$tmp" && find . -type f -name 'vmlinu[xz]-*' | head -n1)
    [ -n "$member" ] && [ -s "$tmp/$member" ] || die "$arch: no $pattern in $deb"
    local rc=0 t0
    extract_btf "$tmp/$member" "$tmp/vmlinux.btf" >"$tmp/extract.log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
      log "$arch: BTF cut from ${member#./}: $(cat "$tmp/extract.log")"
    elif [ "$rc" -eq 3 ] && [ "$method" = dbg ]; then
      command -v "$pahole" >/dev/null 2>&1 || die "'$pahole' not found (package pahole)"
      log "$arch: ${member#./} has no BTF; encoding it from DWARF with pahole (takes a while)"
      t0=$SECONDS
      # Flags as the kernel's own scripts/pahole-flags.sh, minus -j (not reproducible with pahole 1.24).
      "$pahole" --btf_gen_floats --btf_encode_detached="$tmp/vmlinux.btf" "$tmp/$member" >"$tmp/pahole.log" 2>&1 \
        || { cat "$tmp/pahole.log" >&2; die "$arch: pahole failed on ${member#./}"; }
      log "$arch: pahole took $((SECONDS - t0)) s, $(stat -c %s "$tmp/vmlinux.btf") bytes"
    else
      cat "$tmp/extract.log" >&2
      die "$arch: no BTF in ${member#./} of $pkg $version (kernel built without CONFIG_DEBUG_INFO_BTF?)"
    fi
    check_btf "$tmp/vmlinux.btf" "$bits" "$endian"
    chmod 0644 "$tmp/vmlinux.btf"
    mv -f "$tmp/vmlinux.btf" "$btf"
    echo "$source" >"$dir/vmlinux.btf.source"
    rm -rf "$tmp"
  fi

  local out_dir="$repo_root/probes/include/$arch" out
  out="$out_dir/vmlinux.h"
  mkdir -p "$out_dir"
  cleanup+=("$out.tmp")
  {
    echo "/* generated by scripts/gen-vmlinux.sh from $pkg $version ($debarch, Debian $suite) */"
    "$bpftool" btf dump file "$btf" format c
  } >"$out.tmp"
  grep -q '^#ifndef __VMLINUX_H__' "$out.tmp" || { rm -f "$out.tmp"; die "$arch: bpftool produced no vmlinux.h"; }
  if cmp -s "$out.tmp" "$out"; then
    rm -f "$out.tmp"
    log "$arch: ${out#"$repo_root"/} unchanged"
  else
    mv -f "$out.tmp" "$out"
    log "$arch: wrote ${out#"$repo_root"/} ($(stat -c %s "$out") bytes)"
  fi
  echo "$arch: $btf ($source)"
}

for arch in "${arches[@]}"; do
  t0=$SECONDS
  gen_arch "$arch"
  log "$arch: done in $((SECONDS - t0)) s"
done
