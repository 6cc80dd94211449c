"""Regenerate the constraint files under ``constraints/``, one per supported Airflow minor.

Airflow publishes a constraints file per release, built from the newest dependency versions
on the day it shipped. Those files cannot be fetched from every machine, so each one is
reproduced here by resolving that Airflow together with this provider's runtime and test
dependencies with ``uv pip compile --exclude-newer DATE``: nothing published after about two
weeks past the release. The ``apache-airflow-providers-*`` packages are left out of the files
(users upgrade providers independently of Airflow); they and the Alibaba Cloud SDK may be
resolved at their newest during the compile so that this provider's own floors can be met.

Usage::

    python scripts/compat_constraints.py            # every version
    python scripts/compat_constraints.py 3.1 2.11   # only these

``uv`` is taken from $UV or the PATH (``make constraints`` passes the venv's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints"
PYTHON_VERSION = "3.11"


@dataclass(frozen=True)
class AirflowRelease:
    minor: str
    version: str
    released: str
    #: released + 14 days: the dependency horizon of the release's own constraints
    exclude_newer: str


RELEASES = (
    AirflowRelease("2.11", "2.11.2", "2026-03-15", "2026-03-29"),
    AirflowRelease("3.0", "3.0.6", "2025-08-29", "2025-09-12"),
    AirflowRelease("3.1", "3.1.8", "2026-03-11", "2026-03-25"),
    AirflowRelease("3.2", "3.2.2", "2026-05-29", "2026-06-12"),
    AirflowRelease("3.3", "3.3.2", "2026-09-17", "2026-10-01"),
)

#: Packages the compile may take at their newest. The providers are not written to the files;
#: the Alibaba Cloud SDK is this provider's own dependency (never in Airflow's constraints), so its
#: floors come from this provider's release, not Airflow's. A fixed date keeps a regeneration
#: reproducible; move it forward deliberately.
PROVIDERS_HORIZON = "2026-12-01"
SDK_PACKAGES = (
    "alibabacloud-credentials",
    "alibabacloud-credentials-api",
    "alibabacloud-dataworks-public20240518",
    "alibabacloud-gateway-spi",
    "alibabacloud-tea",
    "alibabacloud-tea-openapi",
    "alibabacloud-tea-util",
    "darabonba-core",
)
FREE_PROVIDERS = (
    "apache-airflow-providers-common-compat",
    "apache-airflow-providers-common-io",
    "apache-airflow-providers-common-sql",
    "apache-airflow-providers-fab",
    "apache-airflow-providers-ftp",
    "apache-airflow-providers-http",
    "apache-airflow-providers-imap",
    "apache-airflow-providers-smtp",
    "apache-airflow-providers-sqlite",
    "apache-airflow-providers-standard",
)


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        sys.exit("uv not found: set UV or put it on the PATH (make constraints installs it into .venv)")
    return uv


def compile_release(release: AirflowRelease, uv: str) -> Path:
    out = CONSTRAINTS / f"airflow-{release.minor}.txt"
    with tempfile.TemporaryDirectory() as tmp:
        pin = Path(tmp) / "airflow.in"
        pin.write_text(f"apache-airflow=={release.version}\n")
        raw = Path(tmp) / "resolved.txt"
        command = [
            uv,
            "pip",
            "compile",
            "--quiet",
            "--no-header",
            "--no-annotate",
            "--python-version",
            PYTHON_VERSION,
            "--exclude-newer",
            release.exclude_newer,
            *(
                arg
                for name in (*FREE_PROVIDERS, *SDK_PACKAGES)
                for arg in ("--exclude-newer-package", f"{name}={PROVIDERS_HORIZON}")
            ),
            "--extra",
            "test",
            "--extra",
            "connection-form",
            str(ROOT / "pyproject.toml"),
            str(pin),
            "-o",
            str(raw),
        ]
        subprocess.run(command, check=True, cwd=ROOT)
        pins = [
            line
            for line in raw.read_text().splitlines()
            if line.strip() and not line.startswith(("#", "apache-airflow-providers-", "-e "))
        ]
    header = [
        f"# Airflow {release.version} (released {release.released}) with this provider's runtime and test",
        f"# dependencies, nothing newer than {release.exclude_newer}; Python {PYTHON_VERSION}.",
        "# apache-airflow-providers-* are left free. Regenerate: python scripts/compat_constraints.py",
        f"#   {release.minor}",
    ]
    out.write_text("\n".join([*header, *pins]) + "\n")
    return out


def main(argv: list[str]) -> None:
    wanted = set(argv) or {release.minor for release in RELEASES}
    unknown = wanted - {release.minor for release in RELEASES}
    if unknown:
        sys.exit(f"unknown Airflow minor(s): {', '.join(sorted(unknown))}")
    uv = _uv()
    CONSTRAINTS.mkdir(exist_ok=True)
    for release in RELEASES:
        if release.minor in wanted:
            print(f"{compile_release(release, uv).relative_to(ROOT)}: Airflow {release.version}")


if __name__ == "__main__":
    main(sys.argv[1:])
