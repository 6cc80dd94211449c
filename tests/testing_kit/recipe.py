"""Read the fenced code blocks of a markdown page: the files and the command of a recipe."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPE_PAGE = ROOT / "docs" / "testing-your-dags.md"

# ```lang title="path"  ...  ``` at the start of a line (indented blocks are examples, not files).
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<info>[^\n]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_TITLE = re.compile(r'title="(?P<path>[^"]+)"')


@dataclass(frozen=True)
class Block:
    lang: str
    title: str | None
    body: str


def blocks(markdown: str) -> list[Block]:
    """Every top-level fenced block, in page order."""
    found = []
    for match in _FENCE.finditer(markdown):
        title = _TITLE.search(match["info"])
        found.append(Block(match["lang"], title["path"] if title else None, match["body"]))
    return found


def recipe_files(markdown: str) -> dict[str, str]:
    """``{relative path: content}`` of every block that names its file with ``title="..."``."""
    files: dict[str, str] = {}
    for block in blocks(markdown):
        if block.title is not None:
            if block.title in files:
                raise ValueError(f"the recipe shows {block.title} twice")
            files[block.title] = block.body
    return files


def recipe_commands(markdown: str) -> list[list[str]]:
    """The ``$ ...`` lines of the ``console`` blocks, split into arguments."""
    return [
        shlex.split(line.removeprefix("$ "))
        for block in blocks(markdown)
        if block.lang == "console"
        for line in block.body.splitlines()
        if line.startswith("$ ")
    ]


def write_recipe(markdown: str, folder: Path) -> list[Path]:
    """Write the recipe's files under ``folder``; return their paths."""
    written = []
    for relative, content in recipe_files(markdown).items():
        path = folder / relative
        if folder.resolve() not in path.resolve().parents:
            raise ValueError(f"the recipe writes outside its folder: {relative}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
