"""Run the benchmarks: ``python -m benchmarks.run`` (full, writes ``benchmarks/RESULTS.md``) or
``python -m benchmarks.run --smoke`` (seconds; checks the benchmark code still works, never
fails on timing).

Sections: parse cost, API economy, the hook's cost per call, emulator capacity, triggerer
scale, coalesced reads, the account's quota across K processes. A section that raises makes
the run exit 1; its error is reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import account_quota, call_cost, coalesced, economy, parse_cost, report, triggerer_scale
from benchmarks.common import OUT, ROOT, clear_proxies, code_version, machine_info, steal_seconds

RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"


def _capacity(smoke: bool = False) -> dict[str, Any]:
    from benchmarks.emulator_capacity import run as capacity_run

    return capacity_run(seconds=0.5 if smoke else 5.0, concurrency=32)


SECTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "parse": parse_cost.run,
    "economy": economy.run,
    "call_cost": call_cost.run,
    "capacity": _capacity,
    "triggerer": triggerer_scale.run,
    "coalesced": coalesced.run,
    "account_quota": account_quota.run,
}


def check_smoke(results: dict[str, Any]) -> list[str]:
    """Structural checks of a smoke run: the code works and counts what it should (no timing)."""
    problems = []
    parse = results.get("parse") or {}
    if parse.get("added", {}).get("sdk_imported"):
        problems.append(f"parse: the provider DAG imported the SDK: {parse['added']['sdk_imported']}")
    for flow in (results.get("economy") or {}).get("flows", []):
        if flow["counts"]["create"] != 1 or not flow["exec_ok"] or not flow["reattach_ok"]:
            problems.append(f"economy: {flow['flow']}: {flow['counts']}, execs {flow['execs']}")
    for config in (results.get("triggerer") or {}).get("configs", []):
        if config["mode"] == "native":
            continue  # overloaded by design: its failures are a finding, not broken benchmark code
        if config["ok"] == 0 or config["trigger_error_count"]:
            problems.append(f"triggerer {config['mode']}: {config['ok']} polls, errors {config['trigger_errors']}")
    for config in (results.get("coalesced") or {}).get("configs", []):
        if config["trigger_error_count"] or not config["event_statuses"] or config["missed_events"]:
            problems.append(
                f"coalesced {config['path']}: events {config['event_statuses']}, {config['trigger_errors']}"
            )
    quota_rows = (results.get("account_quota") or {}).get("rows", [])
    if "account_quota" in results and not quota_rows:
        problems.append("account quota: no configuration ran")
    for row in quota_rows:
        if row["calls"] == 0 or row["errors"]:
            problems.append(f"account quota {row['design']} K={row['k']}: {row['calls']} calls, {row['errors']}")
    for row in (results.get("call_cost") or {}).get("rows", []):
        if row["calls_per_s"]["n"] == 0 or (row["errors"] and not row["mode"].startswith("native")):
            problems.append(f"call cost {row['mode']}: no calls or errors")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="a few seconds: N = 20, short windows")
    parser.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)} (no RESULTS.md)")
    parser.add_argument(
        "--render", metavar="RESULTS_JSON", help="only rewrite RESULTS.md from a full run's saved out/results.json"
    )
    args = parser.parse_args(argv)
    if args.render:
        RESULTS_MD.write_text(report.render(json.loads(Path(args.render).read_text())))
        print(f"[bench] rendered {RESULTS_MD} from {args.render}", file=sys.stderr)
        return 0
    clear_proxies()
    OUT.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(SECTIONS)
    unknown = set(names) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    started, steal0 = time.time(), steal_seconds()
    results: dict[str, Any] = {"machine": machine_info(), "smoke": args.smoke, "sections": {}}
    failed = []
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.time()
        try:
            results[name] = SECTIONS[name](smoke=args.smoke)
        except Exception as err:
            failed.append(name)
            results[name] = {"error": f"{type(err).__name__}: {err}"}
            traceback.print_exc()
        results["sections"][name] = round(time.time() - t0, 1)
        print(f"[bench] {name} took {results['sections'][name]} s", file=sys.stderr, flush=True)
    results["duration_s"] = round(time.time() - started, 1)
    # Others commit to the same tree: record whether the measured code changed during the run.
    results["code_at_end"] = code_version()
    results["steal_s"] = round(steal_seconds() - steal0, 1)

    suffix = "-smoke" if args.smoke else ("-partial" if args.only else "")
    (OUT / f"results{suffix}.json").write_text(json.dumps(results, indent=1, default=str))
    text = report.render(results)
    target: Path = RESULTS_MD if not (args.smoke or args.only) else OUT / f"RESULTS{suffix}.md"
    if not failed:
        target.write_text(text)
    print(report.summary(results))
    print(f"\n[bench] {results['duration_s'] / 60:.1f} min; report: {target}", file=sys.stderr)

    if args.smoke:
        problems = check_smoke(results)
        for problem in problems:
            print(f"[bench] smoke check failed: {problem}", file=sys.stderr)
        failed += ["smoke-checks"] if problems else []
    if failed:
        print(f"[bench] FAILED sections: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
