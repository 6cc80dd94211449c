"""The site shows DAGs and tests only from real files, and every page is reachable.

``mkdocs build --strict`` checks links, anchors and included files; these tests check what it does
not: that no page pastes a DAG or a test instead of including it, and that the RAM-policy and
screenshot files the pages show are there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: its blocks are the files themselves: tests/testing_kit writes them out and runs them as shown
RUN_AS_WRITTEN = {DOCS / "testing-your-dags.md"}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
_SHOWS_DAG_OR_TEST = re.compile(r"\bDAG\(|@dag\b|^\s*def test_|^\s*async def test_", re.M)
_INCLUDE = re.compile(r'^--8<-- "(?P<path>[^"]+)"$')


def pages() -> list[Path]:
    return sorted(page for page in DOCS.rglob("*.md") if page not in RUN_AS_WRITTEN)


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(DOCS)))
def test_dags_and_tests_are_included_never_pasted(page):
    for match in _FENCE.finditer(page.read_text(encoding="utf-8")):
        body = match["body"].strip()
        if _INCLUDE.match(body):
            continue
        assert not _SHOWS_DAG_OR_TEST.search(body), (
            f"{page.relative_to(ROOT)} pastes a DAG or a test; include the tested file instead:\n{body[:300]}"
        )


def test_included_files_exist_and_are_tested_examples():
    included = {
        m["path"]
        for page in DOCS.rglob("*.md")
        for block in _FENCE.finditer(page.read_text(encoding="utf-8"))
        if (m := _INCLUDE.match(block["body"].strip()))
    }
    assert included, "no page includes a file: the snippet syntax changed?"
    for path in included:
        assert (ROOT / path).is_file(), f"a page includes {path}, which does not exist"
    examples = {p.relative_to(ROOT).as_posix() for p in (ROOT / "example_dags").glob("example_*.py")}
    shown = {path for path in included if path.startswith("example_dags/")}
    assert examples <= shown, f"example DAGs no page shows: {sorted(examples - shown)}"


def test_every_page_is_in_the_nav():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)

    def walk(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [leaf for item in node for leaf in walk(item)]
        return [leaf for value in node.values() for leaf in walk(value)]

    in_nav = set(walk(config["nav"]))
    on_disk = {page.relative_to(DOCS).as_posix() for page in DOCS.rglob("*.md")}
    assert on_disk <= in_nav, f"pages missing from the nav in mkdocs.yml: {sorted(on_disk - in_nav)}"


def test_the_pictures_the_pages_show_exist():
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).resolve().is_file(), f"{page.relative_to(ROOT)} shows missing {target}"
