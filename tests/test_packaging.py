"""Release metadata that a wheel carries: the changelog names the version, the license is the real text."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

import airflow_provider_dataworks

ROOT = Path(__file__).resolve().parents[1]
#: sha256 of https://www.apache.org/licenses/LICENSE-2.0.txt
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_the_newest_changelog_entry_is_the_package_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## \[(?P<version>[^\]]+)\]", changelog, re.MULTILINE)
    released = [version for version in versions if version != "Unreleased"]
    assert released, "CHANGELOG.md has no version heading"
    assert released[0] == airflow_provider_dataworks.__version__


def test_the_license_file_is_the_apache_license_2_0_unchanged():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
    (license_file,) = project["license-files"]
    assert hashlib.sha256((ROOT / license_file).read_bytes()).hexdigest() == APACHE_2_0_SHA256
