"""``make fuzz``: the fuzz profile's schedules split over one pytest process per core, then one report.

Why a script: Hypothesis draws one test's schedules in one process (pytest-xdist splits tests,
not the examples of one test), and a schedule mostly waits on one core's worth of Python. Each
shard is the same state machine with its own seed (``--hypothesis-seed``), so the shards draw
different schedules and any one of them replays alone. Their stats files are summed here.

Usage: ``python scripts/fuzz_shards.py --shards 2 --examples 20000 [--seed N] [--out build/fuzz-stats.json]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--examples", type=int, default=20_000, help="schedules in all, split evenly")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="shard i uses seed + i")
    parser.add_argument("--out", type=Path, default=Path("build/fuzz-stats.json"))
    args = parser.parse_args()
    if args.shards < 1:
        parser.error("--shards must be at least 1")
    if args.examples < args.shards:
        parser.error("--examples must be at least --shards")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    per_shard = math.ceil(args.examples / args.shards)
    started = time.monotonic()
    shards = []
    for index in range(args.shards):
        seed = args.seed + index
        stats = args.out.with_name(f"{args.out.stem}-shard{index}.json")
        stats.unlink(missing_ok=True)
        env = dict(
            os.environ,
            DATAWORKS_FUZZ_PROFILE="fuzz",
            DATAWORKS_FUZZ_EXAMPLES=str(per_shard),
            DATAWORKS_FUZZ_STATS=str(stats),
        )
        log = args.out.with_name(f"{args.out.stem}-shard{index}.log")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += [f"--hypothesis-seed={seed}", "tests/fuzz/test_deployment_protocol.py"]
        print(f"fuzz shard {index}: seed {seed}, {per_shard} schedules, log {log}", flush=True)
        with log.open("w") as out:
            shards.append((index, seed, stats, log, subprocess.Popen(command, env=env, stdout=out, stderr=out)))
    failed = []
    for index, seed, _, log, process in shards:
        if process.wait() != 0:
            failed.append(index)
            print(f"fuzz shard {index} (seed {seed}) FAILED: see {log}", flush=True)
    took = time.monotonic() - started
    summary = merge([stats for _, _, stats, _, _ in shards], took)
    summary["seeds"] = [seed for _, seed, _, _, _ in shards]
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"fuzz: {summary['schedules']} schedules, {summary['steps']} steps in {took:.0f} s over {args.shards} "
        f"shards ({summary['schedules_per_second']}/s); stats in {args.out}"
    )
    return 1 if failed else 0


def merge(paths: list[Path], took: float) -> dict[str, object]:
    """Sum the shards' counts; a shard that died before writing its stats counts nothing."""
    schedules = steps = 0
    events: Counter[str] = Counter()
    for path in paths:
        if not path.exists():
            continue
        shard = json.loads(path.read_text())
        schedules += int(shard["schedules"])
        steps += int(shard["steps"])
        events.update({kind: int(count) for kind, count in shard["events"].items()})
    return {
        "schedules": schedules,
        "steps": steps,
        "seconds": round(took),
        "schedules_per_second": round(schedules / took, 2) if took else 0.0,
        "events": dict(sorted(events.items())),
    }


if __name__ == "__main__":
    sys.exit(main())
