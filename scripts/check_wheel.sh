#!/usr/bin/env bash
# Build the sdist and the wheel, check them, and use the installed wheel the way a user would.
#
#   scripts/check_wheel.sh PYTHON [CONSTRAINTS]
#
# PYTHON is the development venv's interpreter (it runs `build` and `twine`). The wheel goes into a
# new, empty venv, installed with CONSTRAINTS (Airflow's constraints file) when given, otherwise
# with the development venv's own frozen versions, so the install resolves from the pip cache.
# Everything then runs from a temporary directory: the source tree is never on sys.path.
set -euo pipefail

PYTHON=${1:?usage: check_wheel.sh PYTHON [CONSTRAINTS]}
CONSTRAINTS=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d -t dataworks-wheel-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
DIST="$WORK/dist"
step() { printf '[wheel] %s\n' "$*"; }
elapsed() { printf '%ss' "$SECONDS"; }

step "python -m build (sdist, then the wheel from the sdist)"
# The backend's warnings (deprecated metadata, missing files, ...) fail the step: they are the
# first sign that a future setuptools will refuse to build the project.
# (PYTHONDONTWRITEBYTECODE, which the Makefile exports, only makes setuptools warn that it skips
# byte-compiling into its scratch directory: not a packaging problem, so it is left out here.)
env -u PYTHONDONTWRITEBYTECODE "$PYTHON" -m build --outdir "$DIST" "$ROOT" >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; exit 1; }
if grep -inE 'warning|deprecat' "$WORK/build.log"; then
    echo "[wheel] the build backend warned (above); fix the packaging" >&2
    exit 1
fi
shopt -s nullglob
wheels=("$DIST"/*.whl)
sdists=("$DIST"/*.tar.gz)
[[ ${#wheels[@]} -eq 1 && ${#sdists[@]} -eq 1 ]] || { echo "[wheel] expected one wheel and one sdist in $DIST" >&2; exit 1; }
WHEEL=${wheels[0]}
step "built $(basename "${sdists[0]}") and $(basename "$WHEEL") ($(elapsed))"

step "twine check --strict"
"$PYTHON" -m twine check --strict "$DIST"/*

step "distribution contents"
"$PYTHON" "$ROOT/scripts/check_dist_contents.py" "$WHEEL" "${sdists[0]}"

step "clean venv with the wheel (not editable) ($(elapsed))"
python3 -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
if [[ -z "$CONSTRAINTS" ]]; then
    CONSTRAINTS="$WORK/dev-constraints.txt"
    # The development venv's versions, minus the editable checkout of this project.
    "$PYTHON" -m pip freeze --exclude-editable | grep -viE '^(airflow-provider-dataworks|-e )' >"$CONSTRAINTS"
    step "constraints: the development venv's versions (no constraints/airflow-3.3.txt)"
else
    step "constraints: $CONSTRAINTS"
fi
"$VPY" -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
"$VPY" -m pip install -q -c "$CONSTRAINTS" "$WHEEL" pytest 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
"$VPY" -m pip check

step "the wheel resolves beside a newer darabonba-core ($(elapsed))"
# No release after 1.0.x exists yet, so a stand-in 1.1.0 (metadata only) is offered from a local
# folder, as an SDK release that needs it would bring it; pip's resolver must accept the wheel
# with it (a pin like <1.1 in the wheel's requirements fails here with ResolutionImpossible).
"$VPY" - "$WORK/newer-core" <<'PY'
import sys, zipfile, pathlib
folder = pathlib.Path(sys.argv[1]); folder.mkdir()
info = "darabonba_core-1.1.0.dist-info"
with zipfile.ZipFile(folder / "darabonba_core-1.1.0-py3-none-any.whl", "w") as wheel:
    wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: darabonba-core\nVersion: 1.1.0\n")
    wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: stand-in\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    wheel.writestr(f"{info}/RECORD", "")
PY
"$VPY" -m pip install --dry-run --no-index --find-links "$WORK/newer-core" "$WHEEL" "darabonba-core==1.1.0" \
    >"$WORK/newer-core.txt" 2>&1 || { cat "$WORK/newer-core.txt"; echo "[wheel] the wheel does not resolve beside darabonba-core 1.1.0" >&2; exit 1; }
grep -q "Would install darabonba-core-1.1.0" "$WORK/newer-core.txt" || { cat "$WORK/newer-core.txt"; exit 1; }

step "use the installed wheel from $WORK/user ($(elapsed))"
mkdir -p "$WORK/user/dags" "$WORK/user/tests"
cp "$ROOT/example_dags/example_release_window.py" "$WORK/user/dags/"
cp "$ROOT/scripts/wheel_user_test.py" "$WORK/user/tests/test_installed_wheel.py"
printf '[pytest]\ndataworks_dags_folder = dags\n' >"$WORK/user/pytest.ini"
cd "$WORK/user"
# A user's shell: no proxies, no Airflow settings of the development session.
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy PYTHONPATH
while read -r name; do unset "$name"; done < <(env | grep -oE '^_?AIRFLOW[A-Z0-9_]*' || true)
export AIRFLOW_HOME="$WORK/airflow-home"

step "airflow providers list"
"$WORK/venv/bin/airflow" providers list >"$WORK/providers.txt" 2>&1 || { cat "$WORK/providers.txt"; exit 1; }
VERSION=$(basename "$WHEEL" | cut -d- -f2)
grep -E "^airflow-provider-dataworks +\\|.*\\| +${VERSION//./\\.} *\$" "$WORK/providers.txt" \
    || { cat "$WORK/providers.txt"; echo "[wheel] the provider is not listed" >&2; exit 1; }

step "dataworks-emulator --help"
"$WORK/venv/bin/dataworks-emulator" --help | grep -q -- '--stage-seconds'

step "example DAG under dag.test() against the emulator, through the installed pytest plugin ($(elapsed))"
DATAWORKS_EXAMPLE_POLL_INTERVAL=0.1 "$VPY" -m pytest -v -p no:cacheprovider tests

step "ok ($(elapsed))"
