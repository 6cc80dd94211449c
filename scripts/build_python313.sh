#!/usr/bin/env bash
# Build CPython 3.13 for the Python 3.13 stage (make python3.13 / make py313) from the source of
# Debian trixie's python3.13 package, into a prefix outside the tree; nothing of the system changes
# but one deb-src entry (and an apt pin that keeps trixie's binaries out) and Debian 12's own
# build-dependency packages.
#
#   scripts/build_python313.sh [--fetch-only | --compile-only] PREFIX
#
# Two phases: fetch (apt: the deb-src entry, the build dependencies, the source, unpacked into
# PREFIX.build/src) and compile (configure, make, altinstall). --fetch-only stops after the first;
# --compile-only runs the second on an unpacked source, without apt. `make test` fetches in the
# foreground at its start and compiles niced in the background while the other stages run (apt
# is never used by two processes at once); a later plain call waits for that build (one lock,
# PREFIX.lock) and then finds it done, or builds again in the foreground if it failed.
#
# Idempotent: when PREFIX/bin/python3.13 exists and imports every module the stage needs, nothing
# is done. The source is unpacked as `apt-get source` does it, Debian's patches applied (among them
# the security fixes of trixie's point releases), then built with a plain ./configure && make -j2
# (no PGO/LTO, none of Debian's own configure flags) and `make altinstall`ed into PREFIX.
set -euo pipefail

phase=all
case "${1:-}" in
    --fetch-only) phase=fetch; shift ;;
    --compile-only) phase=compile; shift ;;
esac
prefix=${1:?usage: build_python313.sh [--fetch-only | --compile-only] PREFIX}
prefix=$(realpath -m "$prefix")
# PREFIX is replaced whole on a build: refuse anything that is not a folder of its own.
case "$prefix" in
    / | /usr | /usr/local | /opt | "$HOME" | "$(realpath -m "$PWD")") echo "refusing PREFIX=$prefix: give a folder of its own" >&2; exit 2 ;;
esac
python=$prefix/bin/python3.13
#: the modules Airflow and the tests need from the standard library's C extensions
modules="ssl sqlite3 ctypes zlib bz2 lzma uuid"
check_modules() {
    "$python" - "$modules" <<'PY'
import importlib, sys
failed = []
for name in sys.argv[1].split():
    try:
        importlib.import_module(name)
    except Exception as error:  # noqa: BLE001
        failed.append(f"{name}: {error}")
import uuid
if getattr(uuid, "_generate_time_safe", None) is None and getattr(uuid, "_uuid", None) is None:
    failed.append("uuid: built without libuuid (_uuid)")
if failed:
    sys.exit("python3.13 is missing modules:\n  " + "\n  ".join(failed))
print(f"{sys.executable}: Python {sys.version.split()[0]}, {sys.argv[1]} import")
PY
}

# One build at a time: a plain call waits here for a background compile to end.
mkdir -p "$(dirname "$prefix")"
exec 9>"$prefix.lock"
if ! flock -n 9; then
    echo "python3.13: waiting for the build in progress (lock $prefix.lock)"
    flock 9
fi

if [ -x "$python" ] && check_modules 2>/dev/null; then
    exit 0
fi
work=$prefix.build
if [ "$phase" = compile ] && [ ! -x "$work/src/configure" ]; then
    echo "python3.13: no unpacked source in $work/src (run with --fetch-only first)" >&2
    exit 1
fi

if [ "$phase" != compile ]; then

# --- apt: a deb-src-only entry for trixie, and Debian 12's build dependencies ----------------
sources=/etc/apt/sources.list.d/airflow-provider-dataworks-trixie-src.sources
pin=/etc/apt/preferences.d/airflow-provider-dataworks-no-trixie
build_deps=(build-essential dpkg-dev pkg-config libssl-dev zlib1g-dev libbz2-dev libffi-dev libsqlite3-dev
    liblzma-dev uuid-dev)
missing=()
for package in "${build_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# The same archive host and key as this machine's bookworm entry (deb.debian.org by default).
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\/debian\)[[:space:]]\+bookworm[[:space:]].*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
wanted_sources="# Added by airflow-provider-dataworks (scripts/build_python313.sh): the SOURCE of trixie's
# python3.13 only. No 'deb' line: no trixie binary package can be installed from here.
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: $keyring"
wanted_pin="# Added by airflow-provider-dataworks (scripts/build_python313.sh): never install a trixie binary,
# whatever other sources say.
Package: *
Pin: release n=trixie
Pin-Priority: -1"

need_update=0
if [ ! -f "$sources" ] || [ "$(cat "$sources")" != "$wanted_sources" ] \
    || [ ! -f "$pin" ] || [ "$(cat "$pin")" != "$wanted_pin" ]; then
    need_update=1
elif ! apt-cache showsrc python3.13 2>/dev/null | grep -q '^Package: python3.13$'; then
    need_update=1
fi
if [ $need_update -eq 1 ] || [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "building python3.13 needs root once: the deb-src entry $sources and the packages ${missing[*]:-(none)}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ $need_update -eq 1 ]; then
        echo "apt: deb-src entry for trixie ($mirror) in $sources, trixie binaries pinned out in $pin"
        printf '%s\n' "$wanted_sources" >"$sources"
        printf '%s\n' "$wanted_pin" >"$pin"
    fi
    apt-get update -q
    if [ ${#missing[@]} -gt 0 ]; then
        echo "apt: installing ${missing[*]} from Debian 12"
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
fi

# --- source -----------------------------------------------------------------------------------
rm -rf "$work"
mkdir -p "$work"
cd "$work"
# As root, apt's _apt user cannot write here (e.g. under /root): fetch as root, no warning.
sandbox=()
[ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
apt-get source -q --download-only "${sandbox[@]}" python3.13 >"$work/source.log" 2>&1 \
    || { cat "$work/source.log" >&2; exit 1; }
dsc=$(ls python3.13_*.dsc)
# apt has checked the files against the signed Sources index; dpkg-source only warns that it has no
# keyring of the uploader's.
dpkg-source -x "$dsc" src >>"$work/source.log" 2>&1 || { cat "$work/source.log" >&2; exit 1; }
version=${dsc#python3.13_}
version=${version%.dsc}
printf '%s\n' "$version" >"$work/version"
echo "python3.13: Debian source $version unpacked in $work/src"
fi
[ "$phase" != fetch ] || exit 0

# --- build, install ---------------------------------------------------------------------------
started=$(date +%s)
version=$(cat "$work/version")
cd "$work/src"
echo "python3.13: Debian source $version, configure + make -j2 into $prefix"
./configure -q --prefix="$prefix" --without-ensurepip >"$work/configure.log" 2>&1 \
    || { tail -n 30 "$work/configure.log" >&2; exit 1; }
make -s -j"${JOBS:-2}" >"$work/make.log" 2>&1 || { tail -n 40 "$work/make.log" >&2; exit 1; }
# setup.py-less 3.13 lists the extensions it could not build at the end of make's output.
grep -A3 -E "modules? (were not found|failed to build|failed to import)|Following modules built successfully but were removed" "$work/make.log" || true
rm -rf "$prefix"
make -s altinstall >"$work/install.log" 2>&1 || { tail -n 40 "$work/install.log" >&2; exit 1; }
printf '%s\n' "$version" >"$prefix/DEBIAN_SOURCE_VERSION"
check_modules
rm -rf "$work"
echo "python3.13: built and installed in $(( $(date +%s) - started ))s"
