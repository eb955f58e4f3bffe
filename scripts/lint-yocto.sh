#!/usr/bin/env bash
# Lints meta-ebpf-rs with oelint-adv (PyPI), the linter the Yocto community uses for recipes, classes
# and conf files, against the layer's release (wrynose). Called by `make lint`.
#
# oelint-adv is pinned and installed once into a venv under ~/.cache/ebpf-pack/venv (only pip's PyPI
# access is needed, the first time); later runs reuse it and take a second or two.
# Suppressions live in .oelint.cfg at the repository root, each with its reason.
set -euo pipefail

OELINT_ADV_VERSION=9.11.2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${EBPF_PACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ebpf-pack}/venv"
oelint="$venv/bin/oelint-adv"

installed() { "$oelint" --version 2>/dev/null | grep -q "$OELINT_ADV_VERSION"; }
if ! installed; then
    echo "lint-yocto: installing oelint-adv $OELINT_ADV_VERSION into $venv"
    if python3 -m venv --clear "$venv" >/dev/null 2>&1; then
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "oelint-adv==$OELINT_ADV_VERSION"
    else
        # No venv module (Debian without python3-venv): install into the same folder with --target.
        rm -rf "$venv"
        python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --break-system-packages \
            --target "$venv/lib" "oelint-adv==$OELINT_ADV_VERSION"
        mkdir -p "$venv/bin"
        printf '#!/bin/sh\nPYTHONPATH="%s${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m oelint_adv "$@"\n' \
            "$venv/lib" > "$oelint"
        chmod +x "$oelint"
    fi
    if ! installed; then
        echo "error: oelint-adv $OELINT_ADV_VERSION did not install into $venv" >&2
        echo "  help: check that pip can reach PyPI (proxy settings), then run scripts/lint-yocto.sh again" >&2
        exit 3
    fi
fi

cd "$root"
mapfile -t files < <(find meta-ebpf-rs -type f \( -name '*.bb' -o -name '*.bbappend' -o -name '*.bbclass' \
    -o -name '*.inc' -o -name '*.conf' \) | sort)
if [ "${#files[@]}" -eq 0 ]; then
    echo "error: no recipes, classes or conf files under meta-ebpf-rs/" >&2
    exit 2
fi
# --quiet: only findings; --release: the layer's LAYERSERIES_COMPAT. Exit status is non-zero on findings.
exec "$oelint" --quiet --release wrynose "${files[@]}"
