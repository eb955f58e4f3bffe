#!/usr/bin/env bash
# Provisions the foreign-arch guests of the QEMU test tier (and of `ebpf-pack try` for anyone who wants a
# kernel to try a bundle on): Debian's current kernels and a static busybox per arch, extracted to stable
# paths in a cache, described by one key=value file per arch.
#
#   arm64   Debian 12 `linux-image-<abi>-arm64`      vmlinuz (an uncompressed Image, has BTF)  + busybox
#   arm     Debian 12 `linux-image-<abi>-armmp`      vmlinuz (zImage, NO BTF)                  + busybox
#           and `linux-image-<abi>-armmp-dbg` of the SAME version: its vmlinux (DWARF) is what a target's
#           `kernel.btf:` points at, so the bundle ships a tailored BTF
#   s390x   Debian 12 `linux-image-<abi>-s390x`      vmlinuz (big-endian, NO BTF, no JIT)      + busybox
#           and `linux-image-<abi>-s390x-dbg` of the same version
#           and its modules sch_ingress.ko and cls_bpf.ko: the tier's tc test probe needs the clsact
#           qdisc and the bpf classifier, modules in Debian's kernels (loaded with `try --module`)
#   arm64-trixie  Debian 13 `linux-image-<abi>-arm64` (6.12): an arm64 kernel new enough for BPF
#           trampolines (fentry/fexit need ftrace direct calls, arm64 6.4+)                  + busybox
#
# Versions are whatever the archive serves: the flavour metapackage is resolved to the ABI package it
# depends on. A foreign index can be mid-sync on the mirror (the -dbg package of that ABI not listed yet); then
# the newest ABI package whose -dbg package resolves at the same version is taken instead.
#
# apt runs against a private state per arch (as scripts/gen-vmlinux.sh does): no `dpkg --add-architecture`,
# no root, the system's apt state is never changed. `.deb`s already downloaded by gen-vmlinux.sh are reused.
#
# Output: ${EBPF_PACK_CACHE:-$HOME/.cache/ebpf-pack}/guests/<arch>/guest.env, lines of key=value:
#   arch= debian_arch= suite= kernel_package= kernel_version= kernel= busybox= [vmlinux= (the -dbg
#   vmlinux)] [modules= (space-separated .ko paths)]
# printed on stdout as well. A complete cache is reused without network access; --refresh resolves again.
#
# Usage: scripts/provision-test-kernels.sh [--refresh] [GUEST...]   GUEST in: arm64 arm s390x arm64-trixie
#   (default all)
# Environment: EBPF_PACK_CACHE, DEBIAN_MIRROR (default http://deb.debian.org/debian),
#   DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security).
set -euo pipefail

cache="${EBPF_PACK_CACHE:-$HOME/.cache/ebpf-pack}"
# shellcheck source=scripts/debian-apt.sh
. "$(dirname "$(readlink -f "$0")")/debian-apt.sh"

all_arches=(arm64 arm s390x arm64-trixie)
# guest -> "debian-arch flavour needs-dbg suite"
declare -A spec=(
  [arm64]="arm64 arm64 no bookworm"
  [arm]="armhf armmp yes bookworm"
  [s390x]="s390x s390x yes bookworm"
  [arm64-trixie]="arm64 arm64 no trixie"
)
# guest -> kernel modules to extract from its kernel package (paths under lib/modules/VERSION/kernel/)
# (loop.ko: the loop devices biolatency and biosnoop read in the toolbox's part of the workload.)
declare -A modules=(
  [arm64]="net/sched/sch_ingress.ko net/sched/cls_bpf.ko drivers/block/loop.ko"
  [arm]="drivers/block/loop.ko"
  [s390x]="drivers/block/loop.ko"
  [arm64-trixie]="drivers/block/loop.ko"
)

die() { echo "provision-test-kernels: error: $*" >&2; exit 1; }
log() { echo "provision-test-kernels: $*" >&2; }

refresh=0
arches=()
for a in "$@"; do
  case "$a" in
    --refresh) refresh=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) [ -n "${spec[$a]+x}" ] || die "unknown guest '$a' (known: ${all_arches[*]})"; arches+=("$a") ;;
  esac
done
[ "${#arches[@]}" -gt 0 ] || arches=("${all_arches[@]}")

for tool in apt-get apt-cache dpkg-deb tar sort; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (scripts/install-deps.sh installs it)"
done

cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

# complete ENV_FILE GUEST: every path the file names exists, and it names the guest's modules.
complete() {
  local f=$1 guest=$2 line m
  [ -s "$f" ] || return 1
  for m in ${modules[$guest]:-}; do
    grep -q "^modules=.*/${m##*/}\( \|\$\)" "$f" || return 1
  done
  while IFS= read -r line; do
    case "$line" in
      kernel=*|busybox=*|vmlinux=*) [ -s "${line#*=}" ] || return 1 ;;
      modules=*) for m in ${line#*=}; do [ -s "$m" ] || return 1; done ;;
    esac
  done <"$f"
}

# extract DEB PATTERN OUT: the first member of DEB matching the tar PATTERN, written to OUT.
extract() {
  local deb=$1 pattern=$2 out=$3 tmp member
  tmp=$(mktemp -d "$(dirname "$out")/tmp.XXXXXX")
  cleanup+=("$tmp")
  # tar stops after the first match (--occurrence); dpkg-deb then dies of SIGPIPE, which is expected.
  dpkg-deb --fsys-tarfile "$deb" 2>/dev/null | tar -x -C "$tmp" --wildcards --occurrence=1 "$pattern" || true
  member=$(cd "$tmp" && find . -type f | head -n1)
  [ -n "$member" ] && [ -s "$tmp/$member" ] || die "no $pattern in $deb"
  mv -f "$tmp/$member" "$out"
  rm -rf "$tmp"
}

# extract_module DEB MODULE OUT: kernel module MODULE (a path under lib/modules/VERSION/kernel/) of DEB
# written to OUT, uncompressed (Debian 13 ships them as .ko.xz under /usr/lib).
extract_module() {
  local deb=$1 module=$2 out=$3
  extract "$deb" "./*lib/modules/*/kernel/$module*" "$out.packed"
  case "$(head -c 6 "$out.packed" | od -An -tx1 | tr -d ' ')" in
    fd377a585a00) xz -dc "$out.packed" >"$out.tmp" && mv -f "$out.tmp" "$out" ;;
    *) mv -f "$out.packed" "$out" ;;
  esac
  rm -f "$out.packed"
}

provision() {
  local arch=$1 debarch flavour needs_dbg suite
  read -r debarch flavour needs_dbg suite <<<"${spec[$arch]}"
  local dir="$cache/guests/$arch" env_file
  env_file="$dir/guest.env"
  if [ "$refresh" -eq 0 ] && complete "$env_file" "$arch"; then
    log "$arch: cached ($(sed -n 's/^kernel_version=//p' "$env_file")); --refresh resolves again"
    cat "$env_file"
    return
  fi
  # A cached guest that only lacks modules added since: taken from its own kernel package, so the
  # kernel (and its BTF) stays the one the cache holds.
  if [ "$refresh" -eq 0 ] && [ -s "$env_file" ]; then
    local pkg ver deb
    pkg=$(sed -n 's/^kernel_package=//p' "$env_file")
    ver=$(sed -n 's/^kernel_version=//p' "$env_file")
    deb="$dir/${pkg}_${ver//:/%3a}_${debarch}.deb"
    if [ -s "$deb" ]; then
      local m paths=()
      for m in ${modules[$arch]:-}; do
        [ -s "$dir/${m##*/}" ] || extract_module "$deb" "$m" "$dir/${m##*/}"
        paths+=("$dir/${m##*/}")
      done
      { grep -v '^modules=' "$env_file"; echo "modules=${paths[*]}"; } >"$env_file.tmp"
      mv -f "$env_file.tmp" "$env_file"
      if complete "$env_file" "$arch"; then
        log "$arch: cached ($ver), modules added from $deb"
        cat "$env_file"
        return
      fi
    fi
  fi
  local apt="$dir/apt"
  debian_apt_setup "$apt" "$debarch" "$suite"
  debian_apt_update "$arch"
  version_of() { apt-cache "${aptopts[@]}" show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -n1; }

  # Candidates: the metapackage's dependency first, then every ABI package of the flavour, newest first.
  local meta="linux-image-$flavour" candidates=() pkg version=""
  pkg=$(apt-cache "${aptopts[@]}" depends "$meta" 2>/dev/null \
    | sed -n 's/^ *Depends: \(linux-image-[^ ]*\).*/\1/p' | head -n1) || true
  [ -z "$pkg" ] || candidates+=("$pkg")
  while IFS= read -r p; do candidates+=("$p"); done < <(apt-cache "${aptopts[@]}" pkgnames linux-image- 2>/dev/null \
    | grep -E "^linux-image-[0-9][0-9.]*-[0-9]+-$flavour\$" | sort -rV)
  local chosen=""
  for pkg in "${candidates[@]}"; do
    version=$(version_of "$pkg")
    [ -n "$version" ] || continue
    if [ "$needs_dbg" = yes ] && ! apt-cache "${aptopts[@]}" show "$pkg-dbg=$version" >/dev/null 2>&1; then
      log "$arch: $pkg $version has no $pkg-dbg of the same version in the index; trying an older ABI"
      continue
    fi
    chosen=$pkg
    break
  done
  [ -n "$chosen" ] || die "$arch: no linux-image-*-$flavour$([ "$needs_dbg" = yes ] && echo ' with a matching -dbg package') resolves in Debian $suite ($debarch); see $apt/update.log"
  local bb_version
  bb_version=$(version_of busybox-static)
  [ -n "$bb_version" ] || die "$arch: busybox-static does not resolve in Debian $suite ($debarch); see $apt/update.log"

  # fetch PKG VERSION: the .deb's path (downloaded unless this cache or gen-vmlinux.sh's has it).
  fetch() {
    local name="${1}_${2//:/%3a}_${debarch}.deb" other
    for other in "$dir/$name" "$cache/kernels/$arch/$name"; do
      [ -s "$other" ] && { echo "$other"; return; }
    done
    log "$arch: downloading $1 $2 ($debarch)"
    (cd "$dir" && apt-get "${aptopts[@]}" -qq download "$1=$2" >&2) || die "$arch: apt-get download $1=$2 failed"
    [ -s "$dir/$name" ] || die "$arch: download of $1 $2 did not produce $dir/$name"
    echo "$dir/$name"
  }
  local deb used=() module module_paths=()
  deb=$(fetch "$chosen" "$version")
  used+=("$deb")
  extract "$deb" './boot/vmlinuz-*' "$dir/vmlinuz"
  for module in ${modules[$arch]:-}; do
    extract_module "$deb" "$module" "$dir/${module##*/}"
    module_paths+=("$dir/${module##*/}")
  done
  deb=$(fetch busybox-static "$bb_version")
  used+=("$deb")
  extract "$deb" './*bin/busybox' "$dir/busybox"  # /bin before Debian 13, /usr/bin since
  chmod 0755 "$dir/busybox"
  local dbg_line=""
  if [ "$needs_dbg" = yes ]; then
    deb=$(fetch "$chosen-dbg" "$version")
    used+=("$deb")
    log "$arch: extracting the -dbg vmlinux (decompresses a few hundred MB)"
    extract "$deb" './usr/lib/debug/boot/vmlinux-*' "$dir/vmlinux-dbg"
    dbg_line="vmlinux=$dir/vmlinux-dbg"
  fi
  # Downloads of other versions (in this cache only) are of no further use.
  local old
  for old in "$dir"/*.deb; do
    [ -e "$old" ] || continue
    case " ${used[*]} " in *" $old "*) ;; *) rm -f "$old" ;; esac
  done
  {
    echo "arch=$arch"
    echo "debian_arch=$debarch"
    echo "suite=$suite"
    echo "kernel_package=$chosen"
    echo "kernel_version=$version"
    echo "kernel=$dir/vmlinuz"
    echo "busybox=$dir/busybox"
    echo "busybox_version=$bb_version"
    [ -z "$dbg_line" ] || echo "$dbg_line"
    [ "${#module_paths[@]}" -eq 0 ] || echo "modules=${module_paths[*]}"
  } >"$env_file.tmp"
  mv -f "$env_file.tmp" "$env_file"
  cat "$env_file"
}

for arch in "${arches[@]}"; do
  t0=$SECONDS
  provision "$arch"
  log "$arch: done in $((SECONDS - t0)) s"
done
