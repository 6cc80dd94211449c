"""The README stays a short front door: small, its links alive, its DAG a real example file.

The site itself is checked by ``mkdocs build --strict`` (``make docs``); these tests cover what
MkDocs does not see: README.md lives outside ``docs/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_BYTES = 12 * 1024

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")
_FENCE = re.compile(r"^```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*#*\s*$", re.MULTILINE)


def slug(heading: str) -> str:
    """The anchor Python-Markdown's ``toc`` (MkDocs) and GitHub both give a plain heading."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\s-]", "", text.lower())
    return re.sub(r"[-\s]+", "-", text.strip())


def anchors(markdown: str) -> set[str]:
    return {slug(match["text"]) for match in _HEADING.finditer(_FENCE.sub("", markdown))}


def paragraphs(markdown: str) -> list[str]:
    """Prose paragraphs (no code, tables or headings), whitespace folded."""
    blocks = re.split(r"\n\s*\n", _FENCE.sub("", markdown))
    return [" ".join(b.split()) for b in blocks if b.strip() and not b.lstrip().startswith(("#", "|", "<!--"))]


def readme_links() -> list[str]:
    return [match["target"] for match in _LINK.finditer(_FENCE.sub("", README.read_text(encoding="utf-8")))]


def test_readme_is_at_most_12_kb():
    size = len(README.read_bytes())
    assert size <= MAX_README_BYTES, f"README.md is {size} bytes; move detail to docs/ (limit {MAX_README_BYTES})"


@pytest.mark.parametrize("target", [t for t in readme_links() if not re.match(r"[a-z]+:", t)])
def test_readme_links_resolve(target):
    path, _, anchor = target.partition("#")
    file = README if not path else (ROOT / path).resolve()
    assert file.exists(), f"README links to {path}, which does not exist"
    if anchor:
        assert file.suffix == ".md", f"{target}: an anchor into a file that is not markdown"
        assert anchor in anchors(file.read_text(encoding="utf-8")), f"{target}: no heading with that anchor"


def test_readme_reaches_install_first_dag_and_troubleshooting_in_one_click():
    targets = readme_links()
    assert any(t.startswith("docs/quickstart.md") for t in targets)
    assert "docs/troubleshooting.md" in targets
    text = README.read_text(encoding="utf-8")
    assert "## Install" in text and "make wheel-install" in text


def test_the_readme_dag_is_an_example_dag():
    """Each line of the README's Python block is a line of example_dags/example_release_window.py, in order."""
    (block,) = [m["body"] for m in _FENCE.finditer(README.read_text(encoding="utf-8")) if m["lang"] == "python"]
    source = (ROOT / "example_dags" / "example_release_window.py").read_text(encoding="utf-8").splitlines()
    remaining = iter(source)
    for line in block.splitlines():
        if line.strip():
            assert any(line == candidate for candidate in remaining), f"not in the example, in this order: {line!r}"


def test_no_readme_paragraph_is_repeated_in_the_docs():
    pages = {page: " ".join(page.read_text(encoding="utf-8").split()) for page in DOCS.rglob("*.md")}
    for paragraph in paragraphs(README.read_text(encoding="utf-8")):
        if len(paragraph) < 80:
            continue
        copies = [str(page.relative_to(ROOT)) for page, text in pages.items() if paragraph in text]
        assert not copies, f"README paragraph repeated in {copies}: {paragraph[:100]!r}"
