"""Regenerate ``constraints/airflow-3.3-py3.13.txt``: Airflow 3.3 resolved for Python 3.13.

The same resolution as ``constraints/airflow-3.3.txt`` (``scripts/compat_constraints.py``: the same
``uv pip compile`` command, the same ``--exclude-newer`` date and provider/SDK horizon), only with
``--python-version 3.13``. Used by the Python 3.13 stage (``make py313``).

Usage::

    python scripts/py313_constraints.py     # make constraints-py313

``uv`` is taken from $UV or the PATH.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compat_constraints  # noqa: E402

MINOR = "3.3"
PYTHON_VERSION = "3.13"


def main() -> None:
    release = next(release for release in compat_constraints.RELEASES if release.minor == MINOR)
    out = compat_constraints.CONSTRAINTS / f"airflow-{MINOR}-py{PYTHON_VERSION}.txt"
    uv = compat_constraints._uv()
    with tempfile.TemporaryDirectory() as tmp:
        # compile_release reads both at call time: resolve for 3.13, write to a scratch folder.
        compat_constraints.PYTHON_VERSION = PYTHON_VERSION
        compat_constraints.CONSTRAINTS = Path(tmp)
        lines = compat_constraints.compile_release(release, uv).read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    pins = [line for line in lines if not line.startswith("#")]
    header[-2:] = [
        "# apache-airflow-providers-* are left free. Regenerate: python scripts/py313_constraints.py",
        "#   (the resolution of scripts/compat_constraints.py 3.3, for Python 3.13)",
    ]
    out.write_text("\n".join([*header, *pins]) + "\n")
    print(f"{out.relative_to(compat_constraints.ROOT)}: Airflow {release.version}, Python {PYTHON_VERSION}")


if __name__ == "__main__":
    main()
