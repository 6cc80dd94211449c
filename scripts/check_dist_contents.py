"""Check that the built wheel and sdist carry what an installed provider needs.

    python scripts/check_dist_contents.py DIST.whl DIST.tar.gz

Package data (the emulator's seed, ``py.typed``), the license file and its SPDX expression, and the
three entry points; and nothing of the source tree that is not the package.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from email.parser import Parser

REQUIRED_FILES = (
    "airflow_provider_dataworks/__init__.py",
    "airflow_provider_dataworks/py.typed",
    "airflow_provider_dataworks/testing/default_seed.json",
    "airflow_provider_dataworks/testing/pytest_plugin.py",
    "airflow_provider_dataworks/testing/dag_testing.py",
)
ENTRY_POINT_GROUPS = ("[apache_airflow_provider]", "[console_scripts]", "[pytest11]")


def check_wheel(path: str) -> list[str]:
    problems = []
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        (dist_info,) = {name.split("/", 1)[0] for name in names if name.split("/", 1)[0].endswith(".dist-info")}
        problems += [f"wheel lacks {name}" for name in REQUIRED_FILES if name not in names]
        if f"{dist_info}/licenses/LICENSE" not in names:
            problems.append(f"wheel lacks {dist_info}/licenses/LICENSE")
        strays = sorted({name.split("/", 1)[0] for name in names} - {"airflow_provider_dataworks", dist_info})
        problems += [f"wheel ships a top-level {stray!r}" for stray in strays]
        metadata = Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    if metadata["License-Expression"] != "Apache-2.0":
        problems.append(f"License-Expression is {metadata['License-Expression']!r}, not 'Apache-2.0'")
    if metadata.get_all("License-File") != ["LICENSE"]:
        problems.append(f"License-File is {metadata.get_all('License-File')!r}, not ['LICENSE']")
    if metadata["License"] is not None:
        problems.append("the deprecated License field is set")
    problems += [f"entry_points.txt lacks {group}" for group in ENTRY_POINT_GROUPS if group not in entry_points]
    return problems


def check_sdist(path: str) -> list[str]:
    with tarfile.open(path) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    wanted = ("LICENSE", "README.md", "pyproject.toml", "PKG-INFO", *REQUIRED_FILES)
    return [f"sdist lacks {name}" for name in wanted if name not in names]


def main() -> int:
    wheel, sdist = sys.argv[1:3]
    problems = check_wheel(wheel) + check_sdist(sdist)
    for problem in problems:
        print(f"[wheel] {problem}", file=sys.stderr)
    if not problems:
        print("[wheel] wheel and sdist carry the package data, LICENSE (Apache-2.0) and the entry points")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
