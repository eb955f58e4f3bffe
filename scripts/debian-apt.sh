# Private apt state for downloading Debian packages of another architecture or release without touching
# the system's apt configuration. Sourced (not run) by gen-vmlinux.sh and provision-test-kernels.sh, which
# define log() and may set DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR.
#
#   debian_apt_setup DIR DEBARCH SUITE   write DIR/{sources.list,status,lists/,cache/} and set the array
#                                        `aptopts` to pass to apt-get and apt-cache
#   debian_apt_update LABEL              apt-get update with those options; errors are logged, not fatal

debian_mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
debian_security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
debian_keyring=/usr/share/keyrings/debian-archive-keyring.gpg

debian_apt_setup() {
  local dir=$1 debarch=$2 suite=$3
  [ -r "$debian_keyring" ] || { echo "error: $debian_keyring missing (package debian-archive-keyring)" >&2; exit 1; }
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  : >"$dir/status"
  cat >"$dir/sources.list" <<SOURCES
deb [arch=$debarch signed-by=$debian_keyring] $debian_mirror $suite main
deb [arch=$debarch signed-by=$debian_keyring] $debian_mirror $suite-updates main
deb [arch=$debarch signed-by=$debian_keyring] $debian_security_mirror $suite-security main
SOURCES
  aptopts=(
    -o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$dir/lists" -o "Dir::State::status=$dir/status" -o "Dir::Cache=$dir/cache"
    -o "APT::Architecture=$debarch" -o "APT::Architectures::=$debarch" -o Acquire::Languages=none
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
  )
  [ "$(id -u)" -ne 0 ] || aptopts+=(-o APT::Sandbox::User=root)
  debian_apt_dir=$dir
}

debian_apt_update() {
  # A foreign index mid-sync on the mirror makes update exit non-zero ("File has unexpected size"); that
  # alone is not fatal — what matters is that the packages the caller needs resolve.
  if ! apt-get "${aptopts[@]}" -qq update >"$debian_apt_dir/update.log" 2>&1; then
    log "$1: apt-get update reported errors (kept going; see $debian_apt_dir/update.log):"
    grep -E '^(E|W):' "$debian_apt_dir/update.log" | sed 's/^/    /' | head -5 >&2 || true
  fi
}
