"""Turn the results of a run into the targets' verdicts and ``RESULTS.md``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks import coalesced

PARSE_MAX_RATIO = 0.05
ACHIEVED_MIN_RATIO = 0.98
LATENESS_P99_MAX_MS = 1000.0
CPU_MAX_PCT = 50.0
FLOOR_MAX_FACTOR = 3.0
NATIVE_MIN_FACTOR = 20.0


@dataclass(frozen=True)
class Verdict:
    target: str
    figure: str
    passed: bool | None  # None: could not be measured

    @property
    def label(self) -> str:
        return {True: "PASS", False: "**FAIL**", None: "n/a"}[self.passed]


def _f(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:,.{digits}f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return text + unit


def _mmm(spread: dict[str, Any] | None, digits: int = 1, scale: float = 1.0) -> str:
    """``min / median / max`` of a :func:`benchmarks.common.spread`."""
    if not spread or not spread.get("n"):
        return "–"
    parts = [spread["min"], spread["median"], spread["max"]]
    return " / ".join(_f(p * scale, digits) for p in parts)


def _dist(dist: dict[str, Any] | None, digits: int = 0) -> str:
    """``p50 / p99 / max`` of a :func:`benchmarks.common.distribution`."""
    if not dist or not dist.get("n"):
        return "–"
    return " / ".join(_f(dist[k], digits) for k in ("p50", "p99", "max"))


def trigger_config(results: dict[str, Any], mode: str, n: int, variant: str = "") -> dict[str, Any] | None:
    for config in (results.get("triggerer") or {}).get("configs", []):
        if config["mode"] == mode and config["n"] == n and config.get("variant", "") == variant:
            return config
    return None


# --- verdicts --------------------------------------------------------------------------------


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    out: list[Verdict] = []
    parse = results.get("parse") or {}
    added = parse.get("added")
    if added:
        ratio = added.get("time_ratio_to_sdk")
        out.append(
            Verdict(
                f"Parse: provider adds ≤ {PARSE_MAX_RATIO:.0%} of the SDK client's import time",
                f"+{_f(added['seconds']['median'] * 1000, 1)} ms"
                f" = {_f(ratio * 100 if ratio is not None else None, 1)} %"
                f" of {_f(parse['configs']['sdk_client']['seconds']['median'] * 1000, 0)} ms"
                + (f" (it imports {', '.join(extra)})" if (extra := _public(added.get("extra_packages"))) else ""),
                None if ratio is None else ratio <= PARSE_MAX_RATIO,
            )
        )
        sdk = added.get("sdk_imported") or []
        out.append(
            Verdict(
                "Parse: the SDK is not imported",
                "none of " + ", ".join(f"`{p}`" for p in ("alibabacloud_*", "darabonba")) + " in `sys.modules`"
                if not sdk
                else "imported: " + ", ".join(sdk),
                not sdk,
            )
        )
    else:
        out.append(Verdict("Parse", "not measured", None))

    hook = trigger_config(results, "hook", 1000)
    raw = trigger_config(results, "raw", 1000)
    native = trigger_config(results, "native", 1000)
    native_100 = trigger_config(results, "native", 100)
    if hook is None:
        out.append(Verdict("Triggerer N = 1,000", "not measured", None))
    else:
        out.append(
            Verdict(
                f"Triggerer N = 1,000: achieved ≥ {ACHIEVED_MIN_RATIO} × ideal",
                f"{_f(hook['achieved_per_s'])} of {_f(hook['ideal_per_s'])} polls/s = {_f(hook['achieved_ratio'], 3)}",
                hook["achieved_ratio"] is not None and hook["achieved_ratio"] >= ACHIEVED_MIN_RATIO,
            )
        )
        p99 = hook["done_late_ms"]["p99"]
        out.append(
            Verdict(
                "Triggerer N = 1,000: p99 lateness < 1 s",
                f"p99 {_f(p99, 0)} ms (poll done, vs. its schedule)",
                p99 is not None and p99 < LATENESS_P99_MAX_MS,
            )
        )
        out.append(
            Verdict(
                "Triggerer N = 1,000: no watchdog warnings (loop blocked > 0.2 s)",
                f"{hook['watchdog']['count']} warnings, longest sleep {_f(hook['watchdog']['max_s'], 2)} s",
                hook["watchdog"]["count"] == 0,
            )
        )
        out.append(
            Verdict(
                f"Triggerer N = 1,000: < {CPU_MAX_PCT:.0f} % of one core",
                f"{_f(hook['cpu_pct'])} %",
                hook["cpu_pct"] < CPU_MAX_PCT,
            )
        )
        cpu = hook["cpu_ms_per_poll"]
        floor = raw["cpu_ms_per_poll"] if raw else None
        out.append(
            Verdict(
                f"Triggerer N = 1,000: CPU per poll ≤ {FLOOR_MAX_FACTOR:.0f}× the raw-aiohttp floor",
                f"{_f(cpu, 2)} ms vs {_f(floor, 2)} ms = {_f(cpu / floor if cpu and floor else None, 2)}×",
                None if not (cpu and floor) else cpu <= FLOOR_MAX_FACTOR * floor,
            )
        )
        reference, where = _native_reference(native, native_100)
        out.append(
            Verdict(
                f"Triggerer N = 1,000: CPU per poll ≥ {NATIVE_MIN_FACTOR:.0f}× below the SDK's native async",
                f"{_f(cpu, 2)} ms vs {_f(reference, 1)} ms ({where})"
                f" = {_f(reference / cpu if cpu and reference else None, 0)}×",
                None if not (cpu and reference) else reference >= NATIVE_MIN_FACTOR * cpu,
            )
        )

    economy = results.get("economy") or {}
    flows = economy.get("flows") or []
    if flows:
        reads = [f for f in flows if not f["reads_ok"]]
        out.append(
            Verdict(
                "Economy: reads ≤ ⌈duration / poll_interval⌉ + 1 per wait",
                "all waits" if not reads else "exceeded in: " + "; ".join(_wait_excess(f) for f in reads),
                not reads,
            )
        )
        execs = [f["flow"] for f in flows if not f["exec_ok"]]
        out.append(
            Verdict(
                "Economy: one exec per stage",
                "all flows" if not execs else "repeated in: " + ", ".join(execs),
                not execs,
            )
        )
        lookups = [f["flow"] for f in flows if not f["reattach_ok"]]
        per_attempt = sorted({n for f in flows for n in f["reattach_lookups"]})
        out.append(
            Verdict(
                "Economy: ≤ 1 reattach lookup per attempt",
                f"lookups per attempt seen: {per_attempt}" + (f"; too many in {', '.join(lookups)}" if lookups else ""),
                not lookups,
            )
        )
    else:
        out.append(Verdict("Economy", "not measured", None))
    out += [Verdict(*v) for v in coalesced.verdicts(results.get("coalesced") or {})]
    return out


def _public(packages: list[str] | None) -> list[str]:
    """Packages worth naming: not private (``_cython_…``), not the provider itself."""
    return [p for p in packages or [] if not p.startswith("_") and p != "airflow_provider_dataworks"]


def _native_reference(native: dict[str, Any] | None, native_100: dict[str, Any] | None) -> tuple[float | None, str]:
    if native and native.get("cpu_ms_per_poll"):
        return native["cpu_ms_per_poll"], "native async at N = 1,000"
    if native_100 and native_100.get("cpu_ms_per_poll"):
        return native_100["cpu_ms_per_poll"], "native async at N = 100; at 1,000 it completed no poll"
    return None, "native async not measured"


def _wait_excess(flow: dict[str, Any]) -> str:
    bad = [w for w in flow["waits"] if not w["ok"]]
    return flow["flow"] + " (" + ", ".join(f"{w['reads']} reads > {w['bound']}" for w in bad) + ")"


# --- tables ----------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(results: dict[str, Any]) -> str:
    return _table(["target", "measured", "verdict"], [[v.target, v.figure, v.label] for v in verdicts(results)])


def parse_section(parse: dict[str, Any]) -> str:
    if "configs" not in parse:
        return f"Not measured: {parse.get('error', 'skipped')}"
    labels = {
        "baseline": "DAG with 2 × `BaseOperator` (after `airflow.sdk`)",
        "provider": "same DAG with `CreatePipelineRunOperator` + `PipelineRunSensor` (after `airflow.sdk`)",
        "sdk_client": "`import alibabacloud_dataworks_public20240518.client` (after `airflow.sdk`)",
        "baseline_cold": "DAG with 2 × `BaseOperator`, cold interpreter (includes `import airflow`)",
        "provider_cold": "provider DAG, cold interpreter",
        "sdk_client_cold": "`import alibabacloud_dataworks_public20240518.client`, cold interpreter",
        "peer_maxcompute": "peer: `import airflow.providers.alibaba.cloud.operators.maxcompute` (after `airflow.sdk`)",
    }
    rows = []
    for name, label in labels.items():
        config = parse["configs"].get(name)
        if config is None:
            continue
        rows.append(
            [
                label,
                str(config["seconds"]["n"]),
                _mmm(config["seconds"], 1, 1000),
                _mmm(config["rss_mb"], 1),
                _f(config["modules"]["median"], 0),
                ", ".join(config["sdk_modules"]) or "none",
            ]
        )
    added = parse["added"]
    text = _table(
        [
            "what is timed (fresh interpreter each)",
            "repeats",
            "ms min / median / max",
            "added RSS MB",
            "modules",
            "SDK modules",
        ],
        rows,
    )
    text += "\n\n" + _table(
        ["provider DAG − baseline DAG (paired repeats)", "min / median / max", "ratio to the SDK client import"],
        [
            ["time, ms", _mmm(added["seconds"], 1, 1000), _f((added["time_ratio_to_sdk"] or 0) * 100, 1, " %")],
            ["RSS, MB", _mmm(added["rss_mb"], 2), _f((added["rss_ratio_to_sdk"] or 0) * 100, 1, " %")],
        ]
        + (
            [["time, cold interpreters, ms", _mmm(added["cold_seconds"], 0, 1000), "–"]]
            if "cold_seconds" in added
            else []
        ),
    )
    extra = added.get("extra_packages")
    if extra is not None:
        text += (
            "\n\nTop-level packages the provider DAG imports and the baseline DAG does not: "
            + (", ".join(f"`{name}`" for name in extra) or "none")
            + "."
        )
    peer = parse.get("peer") or {}
    if "error" in peer:
        text += f"\n\nPeer not measured: the scratch venv could not be built ({peer['error']})."
    elif peer.get("install_seconds") is not None:
        text += f"\n\nThe peer's scratch venv (`benchmarks/out/peer-venv`) took {peer['install_seconds']} s to build."
    return text


def _rep(config: dict[str, Any], key: str, value: Any, digits: int = 1) -> str:
    """The median, with the range over repeats when there were several."""
    values = [v for v in (config.get("per_rep") or {}).get(key, []) if v is not None]
    text = _f(value, digits)
    if config.get("reps", 1) > 1 and values:
        text += f" ({_f(min(values), digits)}–{_f(max(values), digits)})"
    return text


def triggerer_section(triggerer: dict[str, Any]) -> str:
    configs = triggerer.get("configs") or []
    if not configs:
        return f"Not measured: {triggerer.get('error', 'skipped')}"
    names = {
        "hook": "hook (default: shared aiohttp session)",
        "hook_threads": "hook, threads fallback",
        "raw": "raw aiohttp (floor)",
        "native": "SDK native async",
    }
    rows = []
    for c in configs:
        wd = c["watchdog"]
        rows.append(
            [
                names.get(c["mode"], c["mode"]) + (f", what-if: {c['variant']}" if c.get("variant") else ""),
                _f(c["n"]),
                str(c.get("reps", 1)),
                f"{_f(c['achieved_per_s'])} / {_f(c['ideal_per_s'])}",
                _rep(c, "achieved_ratio", c["achieved_ratio"], 3),
                f"{_f(c['errors'], 0)} / {_f(c['in_flight'], 0)}",
                _rep(c, "cpu_pct", c["cpu_pct"]),
                _rep(c, "cpu_ms_per_poll", c["cpu_ms_per_poll"], 2),
                f"{_f(c['opens_per_poll'], 3)} ({_f(c['opens'], 0)})",
                _f(c["peak_rss_mb"], 0),
                f"{_f(c['done_late_ms']['p50'], 0)} / {_rep(c, 'lateness_p99_ms', c['done_late_ms']['p99'], 0)}"
                f" / {_f(c['done_late_ms']['max'], 0)}",
                _dist(c["event_latency_s"], 2),
                f"{_f(c['event_statuses'].get('success', 0), 0)} / {_f(c['finishing'], 0)}"
                f" (missed {_f(c['missed_events'], 0)})",
                f"{_rep(c, 'watchdog_count', wd['count'], 0)} / {_rep(c, 'watchdog_max_s', wd['max_s'], 2)}",
                f"{_f((c.get('gc') or {}).get('gen2'), 0)} / {_f((c.get('gc') or {}).get('max_pause_ms'), 0)}",
                _f(c.get("server_cpu_pct")),
                _rep(c, "other_load_pct", c.get("other_load_on_client_core_pct"), 0),
            ]
        )
    text = _table(
        [
            "path",
            "N",
            "repeats",
            "ok polls/s / ideal",
            "ratio",
            "errors / in flight",
            "client CPU %",
            "CPU ms / poll",
            "TCP opens / poll (in window)",
            "peak RSS MB",
            "lateness p50 / p99 / max ms",
            "finish → event p50 / p99 / max s",
            "events / runs finished",
            "watchdog > 0.2 s: count / longest sleep s",
            "full GCs / longest GC pause ms",
            "emulator CPU %",
            "others' load on the client core %",
        ],
        rows,
    )
    pools = [c for c in configs if c.get("sdk_pool")]
    if pools:
        text += "\n\nInside the hook's threads fallback (its SDK thread pool, instrumented):\n\n"
        text += _table(
            [
                "N",
                "threads",
                "SDK CPU ms per call (in the thread)",
                "rest of the CPU per poll ms (loop, hand-off, trigger)",
                "queue wait p50 / p99 / max ms",
                "call in thread p50 / p99 / max ms",
            ],
            [
                [
                    _f(c["n"]),
                    _f(c["sdk_pool"]["threads"], 0),
                    _f(c["sdk_pool"]["thread_cpu_ms_per_task"], 2),
                    _f(
                        c["cpu_ms_per_poll"] - c["sdk_pool"]["thread_cpu_ms_per_task"]
                        if c["cpu_ms_per_poll"] and c["sdk_pool"]["thread_cpu_ms_per_task"]
                        else None,
                        2,
                    ),
                    _dist(c["sdk_pool"]["queue_wait_ms"], 1),
                    _dist(c["sdk_pool"]["run_ms"], 1),
                ]
                for c in pools
            ],
        )
    return text


def _wait_text(wait: dict[str, Any]) -> str:
    sign = "≤" if wait["ok"] else ">"
    return f"{wait['reads']} {sign} {wait['bound']} ({wait['duration_s']} s; {wait['back_to_back']} back-to-back)"


def economy_section(economy: dict[str, Any]) -> str:
    flows = economy.get("flows") or []
    if not flows:
        return f"Not measured: {economy.get('error', 'skipped')}"
    rows = []
    for f in flows:
        c, m = f["counts"], f["minimum"]
        waits = "; ".join(_wait_text(w) for w in f["waits"]) or "–"
        rows.append(
            [
                f["flow"],
                f["example"],
                f"{c['create']} / {m['create']}",
                f"{c['list']} / {m['list']}",
                f"{c['get']} / {m['reads']}",
                f"{c['exec']} / {m['exec']}",
                f"{c['abolish']} / {m['abolish']}",
                str(f["retried"]),
                str(f["refused"]),
                waits,
                ", ".join(str(n) for n in f["reattach_lookups"]),
                "PASS" if f["reads_ok"] and f["exec_ok"] and f["reattach_ok"] else "**FAIL**",
            ]
        )
    return _table(
        [
            "flow",
            "example DAG",
            "create",
            "list",
            "get",
            "exec",
            "abolish",
            "retried (429/5xx)",
            "refused (4xx)",
            "reads per wait vs bound (wait duration; reads < ½ interval after the previous one)",
            "reattach lookups per attempt",
            "targets",
        ],
        rows,
    )


def capacity_section(capacity: dict[str, Any]) -> str:
    if "http" not in capacity:
        return f"Not measured: {capacity.get('error', 'skipped')}"
    rows = []
    for proto in ("http", "https"):
        r = capacity[proto]
        rows.append(
            [
                proto.upper(),
                _f(r.get("req_per_s")),
                _f(r.get("p50_ms"), 2),
                _f(r.get("p99_ms"), 2),
                _f(r.get("server_cpu_util"), 2),
                _f(r.get("server_cpu_us_per_req"), 0),
                str(r.get("errors")),
            ]
        )
    return _table(
        [
            "protocol",
            "signed GetPipelineRun req/s",
            "p50 ms",
            "p99 ms",
            "server CPU (cores)",
            "server CPU µs/req",
            "errors",
        ],
        rows,
    )


def call_cost_section(call_cost: dict[str, Any]) -> str:
    rows_in = call_cost.get("rows") or []
    if not rows_in:
        return f"Not measured: {call_cost.get('error', 'skipped')}"
    names = {
        "sync": "`get_pipeline_run` (sync, 1 thread)",
        "hook_async": "`get_pipeline_run_async` (hook, default: SDK async over its shared aiohttp session)",
        "hook_threads": "`get_pipeline_run_async` (hook, fallback: sync SDK on its thread pool)",
        "native": "SDK native `get_pipeline_run_async`",
        "native_small_ca": "SDK native `get_pipeline_run_async`, trusting only the 1-cert emulator CA",
        "raw": "raw aiohttp, one shared session (floor)",
    }
    rows = [
        [
            names.get(r["mode"], r["mode"]),
            str(r["conc"]),
            _mmm(r["calls_per_s"], 0),
            _mmm(r["cpu_us_per_call"], 0),
            _f(r["cpu_util"]["median"], 2),
            _f(r["opens_per_call"]["median"], 3),
            f"{_f(r['p50_ms']['median'], 2)} / {_f(r['p99_ms']['median'], 2)}",
            str(r["errors"]),
        ]
        for r in rows_in
    ]
    return _table(
        [
            "path (HTTPS)",
            "concurrency",
            "calls/s min / median / max",
            "client CPU µs/call min / median / max",
            "client CPU (cores)",
            "TCP opens / call",
            "latency p50 / p99 ms (median)",
            "errors",
        ],
        rows,
    )


def _commit(machine: dict[str, Any], end: dict[str, str] | None) -> str:
    start_tree = machine.get("provider_tree", "")
    text = f"{machine.get('commit') or '–'} (provider code: git tree {start_tree or '–'})"
    if end is None:
        return text
    if end.get("provider_tree") != start_tree:
        return f"**the provider's code changed during the run**: {text} at the start, {end} at the end"
    if end.get("commit") != machine.get("commit"):
        text += f"; HEAD moved to {end.get('commit')} during the run, the provider's code did not change"
    return text


def machine_section(results: dict[str, Any]) -> str:
    m = results["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    rows = [
        ["date", m["date"]],
        ["commit", _commit(m, results.get("code_at_end"))],
        ["CPU", f"{m['cpu']} ({m['cores']} cores), {m['memory_gib']} GiB"],
        ["kernel / Python / OpenSSL", f"{m['kernel']} / {m['python']} / {m['openssl']}"],
        ["packages", packages],
        ["method", f"pinned server/client cores: {m['pinning']}; private network namespace: {m['netns']}"],
        [
            "noise",
            f"load average at start {', '.join(f'{x:.2f}' for x in m['load_average'])}; hypervisor steal during "
            f"the run {results.get('steal_s', 0):.1f} s; other engineers' tests were running on the same 2 cores",
        ],
        ["full run took", f"{results.get('duration_s', 0) / 60:.1f} min"],
    ]
    return _table(["", ""], rows)


# --- documents -------------------------------------------------------------------------------


def summary(results: dict[str, Any]) -> str:
    """The table printed at the end of a run."""
    parts = ["", "Targets", targets_table(results)]
    triggerer = results.get("triggerer") or {}
    if triggerer.get("configs"):
        parts += ["", "Triggerer scale", triggerer_section(triggerer)]
    call_cost = results.get("call_cost") or {}
    if call_cost.get("rows"):
        parts += ["", "Cost per call", call_cost_section(call_cost)]
    return "\n".join(parts)


def render(results: dict[str, Any]) -> str:
    """The whole ``RESULTS.md``."""
    kind = "smoke run (`--smoke`): timings are NOT meaningful" if results.get("smoke") else "full run"
    sections = [
        "# Benchmark results",
        "",
        f"Written by `python -m benchmarks.run` ({kind}); the method is in [README.md](README.md). Every figure"
        " was measured on a shared, noisy machine: compare ratios within this run rather than absolute values.",
        "",
        "## Machine",
        "",
        machine_section(results),
        "",
        "## Targets",
        "",
        targets_table(results),
        "",
        reading(results),
        "## 1. Parse cost",
        "",
        parse_section(results.get("parse") or {}),
        "",
        "## 2. Triggerer scale",
        "",
        _triggerer_intro(results.get("triggerer") or {}),
        "",
        triggerer_section(results.get("triggerer") or {}),
        "",
        "## 3. API economy",
        "",
        _economy_intro(results.get("economy") or {}),
        "",
        economy_section(results.get("economy") or {}),
        "",
        "## 4. Emulator capacity",
        "",
        "`benchmarks/emulator_capacity.py` (the emulator's author's load generator, called as is: emulator and"
        f" load generator are not pinned). Concurrency {(results.get('capacity') or {}).get('concurrency', '–')}.",
        "",
        capacity_section(results.get("capacity") or {}),
        "",
        "## 5. The hook's cost per call (HTTPS, closed loop)",
        "",
        _call_cost_intro(results.get("call_cost") or {}),
        "",
        call_cost_section(results.get("call_cost") or {}),
        "",
        "## 6. Coalesced status reads and the request budget",
        "",
        "Method: `benchmarks/coalesced.py` (its docstring). Read calls are counted by the emulator, per second,"
        " inside the window.",
        "",
        coalesced.section(results.get("coalesced") or {}),
        "",
    ]
    return "\n".join(sections)


def _triggerer_intro(triggerer: dict[str, Any]) -> str:
    configs = triggerer.get("configs") or []
    if not configs:
        return ""
    windows = sorted({f"{_f(c['window_s'], 0)} s" for c in configs})
    repeated = [f"{c['mode']} at N = {_f(c['n'])}" for c in configs if c.get("reps", 1) > 1]
    return (
        f"Real `PipelineRunTrigger` instances, `async for event in trigger.run()` in one default asyncio loop, "
        f"polling every {_f(configs[0]['poll_s'], 0)} s over HTTPS; one run per trigger. Each configuration runs in"
        f" a fresh client process with one measured window ({' or '.join(windows)}) after one poll interval in"
        " which the triggers start, spread over the interval"
        + (f"; {', '.join(repeated)} three times (median, range in brackets), the rest once." if repeated else ".")
        + " During the window N/5 runs finish at random times (their stages executed by the scenario process);"
        " each finished trigger is replaced by a new one, so N stay active. *Lateness*: when a poll completed minus"
        " when it was due (previous poll's end + interval; the first at the trigger's start); polls overdue by more"
        " than 1 s at the window's end count with their lateness so far. *ok polls/s*: polls started in the window"
        " that succeeded; *ideal*: N / interval, evaluated per trigger. *TCP opens*: `/proc/net/snmp` ActiveOpens of"
        " the benchmark's own network namespace. *GC*: the client's garbage-collector pauses in the window (full,"
        " generation-2, collections and the longest pause). *Others' load*: CPU that other processes of this shared"
        " machine took on the client's core during the window."
    )


def _economy_intro(economy: dict[str, Any]) -> str:
    if not economy.get("flows"):
        return ""
    return (
        f"Emulator stages take {economy['stage_seconds']} s; poll interval {economy['poll_s']} s. Counts are"
        " HTTP calls the emulator answered (`emu.calls()`), *measured / minimum the flow needs* (for `get`: the"
        " stage completions the flow must observe; the polling bound is the per-wait column). Retried transient"
        " failures and refused calls (4xx, e.g. a stage that needs a console approval) are counted separately"
        " and not in the kinds."
    )


def _call_cost_intro(call_cost: dict[str, Any]) -> str:
    if not call_cost.get("rows"):
        return ""
    return (
        f"{call_cost['reps']} repeats of a {call_cost['window_s']} s window (after a warm-up), each in a fresh"
        " process pinned to the client core, repeats interleaved across paths; the emulator on the other core."
        " CPU counts every thread of the client process."
    )


def reading(results: dict[str, Any]) -> str:
    """Sentences computed from this run's figures."""
    lines = ["### Reading", ""]
    hook = trigger_config(results, "hook", 1000)
    threads = trigger_config(results, "hook_threads", 1000)
    raw = trigger_config(results, "raw", 1000)
    native = trigger_config(results, "native", 1000)
    native_100 = trigger_config(results, "native", 100)
    big = trigger_config(results, "hook", 5000)
    big_threads = trigger_config(results, "hook_threads", 5000)
    big_raw = trigger_config(results, "raw", 5000)
    if hook and raw and hook.get("cpu_ms_per_poll") and raw.get("cpu_ms_per_poll"):
        lines.append(
            f"* At N = 1,000 the hook (default transport: the SDK's async methods over its shared aiohttp session)"
            f" costs {_f(hook['cpu_ms_per_poll'], 2)} ms of CPU per poll,"
            f" {hook['cpu_ms_per_poll'] / raw['cpu_ms_per_poll']:.1f}× the raw-aiohttp floor"
            f" ({_f(raw['cpu_ms_per_poll'], 2)} ms), at {_f(hook['cpu_pct'])} % of a core, with"
            f" {_f(hook['opens_per_poll'], 4)} TCP connections opened per poll."
        )
        lines.append(_watchdog_sentence("the hook", hook, raw))
        frozen = trigger_config(results, "hook", 1000, "gc.freeze()")
        if frozen:
            lines.append(
                f"  What-if, the same with `gc.freeze()` after the imports (a triggerer-wide setting Airflow does"
                f" not make): {_f(frozen['watchdog']['count'], 0)} watchdog warnings (longest sleep"
                f" {_f(frozen['watchdog']['max_s'], 2)} s), longest GC pause"
                f" {_f((frozen.get('gc') or {}).get('max_pause_ms'), 0)} ms, lateness p99"
                f" {_f(frozen['done_late_ms']['p99'], 0)} ms."
            )
    if threads and raw and threads.get("cpu_ms_per_poll") and raw.get("cpu_ms_per_poll"):
        factor = threads["cpu_ms_per_poll"] / raw["cpu_ms_per_poll"]
        lines.append(
            f"* Its threads fallback (sync SDK on a 16-thread pool) at N = 1,000:"
            f" {_f(threads['cpu_ms_per_poll'], 2)} ms per poll ({factor:.1f}× the floor),"
            f" {_f(threads['cpu_pct'])} % of a core, lateness p99 {_f(threads['done_late_ms']['p99'], 0)} ms."
        )
        lines.append(_watchdog_sentence("the threads fallback", threads, raw))
    reference, where = _native_reference(native, native_100)
    if native:
        lines.append(
            f"* The SDK's native async path at N = 1,000 collapses: {_f(native['achieved_per_s'])} ok polls/s of"
            f" {_f(native['ideal_per_s'])} due, {_f(native['in_flight'], 0)} calls still in flight at the window's"
            f" end, the loop blocked for up to {_f(native['watchdog']['max_s'], 1)} s, {_f(native['cpu_pct'])} %"
            f" CPU, peak RSS {_f(native['peak_rss_mb'], 0)} MB, {_f(native['opens'], 0)} TCP connections opened in"
            f" the window; its duration was capped at the {_f(native['window_s'], 0)} s window."
        )
    if hook and reference and hook.get("cpu_ms_per_poll"):
        lines.append(
            f"* Per poll the native path costs {_f(reference, 1)} ms of CPU ({where}),"
            f" {reference / hook['cpu_ms_per_poll']:.0f}× the hook."
        )
    if big:
        others = []
        for name, config in (("raw floor", big_raw), ("threads fallback", big_threads)):
            if config:
                others.append(
                    f"the {name}: {_f(config['achieved_ratio'], 3)} of ideal, {_f(config['cpu_pct'])} % CPU,"
                    f" {_f(config['cpu_ms_per_poll'], 2)} ms per poll, lateness p99"
                    f" {_f(config['done_late_ms']['p99'], 0)} ms, {_f(config['watchdog']['count'], 0)} watchdog"
                    f" warnings (longest {_f(config['watchdog']['max_s'], 2)} s)"
                )
        lines.append(
            f"* N = 5,000, the hook: {_f(big['achieved_per_s'])} of {_f(big['ideal_per_s'])} polls/s"
            f" ({_f(big['achieved_ratio'], 3)}), {_f(big['cpu_pct'])} % CPU, {_f(big['cpu_ms_per_poll'], 2)} ms per"
            f" poll, lateness p99 {_f(big['done_late_ms']['p99'], 0)} ms, {_f(big['watchdog']['count'], 0)} watchdog"
            f" warnings (longest {_f(big['watchdog']['max_s'], 2)} s), peak RSS {_f(big['peak_rss_mb'], 0)} MB."
            + (" For comparison, " + "; ".join(others) + "." if others else "")
        )
        lines.append(f"* Bottleneck at N = 5,000: {bottleneck(big)}")
    lines.append("")
    return "\n".join(lines) + "\n"


def _watchdog_sentence(name: str, config: dict[str, Any], raw: dict[str, Any]) -> str:
    counts = (config.get("per_rep") or {}).get("watchdog_count") or [config["watchdog"]["count"]]
    longest = (config.get("per_rep") or {}).get("watchdog_max_s") or [config["watchdog"]["max_s"]]
    raw_counts = (raw.get("per_rep") or {}).get("watchdog_count") or [raw["watchdog"]["count"]]
    gc = config.get("gc") or {}
    raw_gc = raw.get("gc") or {}
    return (
        f"  Event-loop stalls, {name}: {counts} watchdog warnings per window (longest sleeps"
        f" {', '.join(_f(x, 2) for x in longest)} s against the 0.2 s threshold; the raw floor: {raw_counts});"
        f" {_f(gc.get('collections'), 0)} garbage collections in the window, {_f(gc.get('gen2'), 0)} of them full"
        f" (longest pause {_f(gc.get('max_pause_ms'), 0)} ms), against {_f(raw_gc.get('collections'), 0)}"
        f" ({_f(raw_gc.get('gen2'), 0)} full, longest {_f(raw_gc.get('max_pause_ms'), 0)} ms) for the floor. A full"
        " collection of this Airflow-sized heap is what stalls the loop; the SDK's per-call allocations make them"
        " more frequent."
    )


def bottleneck(big: dict[str, Any]) -> str:
    """Name what limits the hook at N = 5,000, from the figures."""
    gc = big.get("gc") or {}
    per_poll = big.get("cpu_ms_per_poll")
    ceiling = (
        f" At {_f(per_poll, 2)} ms per poll one core saturates near {1000 / per_poll:,.0f} polls/s"
        f" (≈ {10 * 1000 / per_poll:,.0f} triggers at a 10 s interval)."
        if per_poll
        else ""
    )
    if big["cpu_pct"] >= 85:
        return (
            f"the client core: the process used {_f(big['cpu_pct'])} % of the one core it is pinned to"
            " (the event loop and the GIL keep a triggerer on one core)." + ceiling
        )
    stalls = big["watchdog"]["count"] > 0 or (big["achieved_ratio"] or 0) < ACHIEVED_MIN_RATIO
    if stalls:
        return (
            f"the single event-loop thread, not the core ({_f(big['cpu_pct'])} % of it used) nor the emulator"
            f" ({_f(big.get('server_cpu_pct'))} %): every poll's request building, signing, TLS and parsing runs on"
            f" it, and full garbage collections of the heap stop it (longest {_f(gc.get('max_pause_ms'), 0)} ms,"
            f" {_f(gc.get('gen2'), 0)} in the window), so bursts of due polls queue behind each other (lateness"
            f" p99 {_f(big['done_late_ms']['p99'], 0)} ms, {_f(big['watchdog']['count'], 0)} watchdog warnings)."
            + ceiling
        )
    return f"none reached at {_f(big['cpu_pct'])} % of a core." + ceiling
