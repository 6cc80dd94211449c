"""``make fuzz``'s shard runner (scripts/fuzz_shards.py): the shards' counts are summed, none lost."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "fuzz_shards.py"


def load():
    spec = importlib.util.spec_from_file_location("fuzz_shards", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shards_counts_are_summed_and_a_shard_without_stats_counts_nothing(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"schedules": 3, "steps": 20, "events": {"fault:drop": 2, "mode:sync": 3}}))
    second.write_text(json.dumps({"schedules": 5, "steps": 31, "events": {"fault:drop": 1, "mode:deferrable": 5}}))

    summary = load().merge([first, second, tmp_path / "died.json"], took=4.0)

    assert summary["schedules"] == 8 and summary["steps"] == 51
    assert summary["events"] == {"fault:drop": 3, "mode:deferrable": 5, "mode:sync": 3}
    assert summary["schedules_per_second"] == 2.0


def test_bad_arguments_name_the_flag_before_any_shard_starts(tmp_path):
    out = tmp_path / "stats.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--shards", "3", "--examples", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )

    assert result.returncode == 2
    assert "--examples must be at least --shards" in result.stderr
    assert not list(tmp_path.iterdir())
