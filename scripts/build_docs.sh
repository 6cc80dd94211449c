#!/usr/bin/env bash
# Build the documentation site (mkdocs.yml) into build/site, every warning an error: a broken link
# or anchor, a page missing from the nav, a snippet file that does not exist, a docstring mkdocstrings
# cannot read. Then check what MkDocs does not see: README.md's size and links (tests/docs).
#   usage: scripts/build_docs.sh [python]   (default .venv/bin/python; it needs the `docs` extra)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-.venv/bin/python}"

# Material prints a banner about its successor on every build; it is not a warning about these docs.
export NO_MKDOCS_2_WARNING=1
"$python" -m mkdocs build --strict --clean --config-file mkdocs.yml
"$python" -m pytest -q -p no:cacheprovider tests/docs/test_readme.py
