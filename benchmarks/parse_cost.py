"""Parse cost: what importing the provider adds to parsing a DAG file.

Two DAG files, identical but for their tasks: one uses ``CreatePipelineRunOperator`` and
``PipelineRunSensor``, the other two plain ``BaseOperator`` tasks. Each measurement is a fresh
interpreter, pinned to the client core, that first imports what both files need
(``airflow.sdk`` and ``pendulum``, as Airflow's DAG processor has them loaded already) and then
times loading the DAG file the way ``DagBag`` does (``importlib`` from a file path). The
difference is what the provider adds; it is compared with ``import
alibabacloud_dataworks_public20240518.client`` measured the same way (after ``airflow.sdk``):
the price a DAG file would pay if the provider imported the SDK at parse time. Also measured:
the same files in a cold interpreter (``airflow`` import included), whether any SDK module ended
up in ``sys.modules``, and — in a scratch venv under ``benchmarks/out`` — the Alibaba provider's
MaxCompute operator import as a peer.

Each configuration gets one untimed warm-up (it writes ``.pyc`` files) and then repeats,
interleaved across configurations.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path
from typing import Any

from benchmarks.common import CLIENT_CPU, OUT, PYTHON, ROOT, BenchmarkError, clean_env, pinned, spread

PARSE_DIR = OUT / "parse"
PEER_VENV = OUT / "peer-venv"
PEER_PACKAGE = "apache-airflow-providers-alibaba==3.5.2"
PEER_MODULE = "airflow.providers.alibaba.cloud.operators.maxcompute"
SDK_MODULE = "alibabacloud_dataworks_public20240518.client"
#: module prefixes that must not be imported by parsing a DAG that uses the provider
SDK_PREFIXES = (
    "alibabacloud_dataworks_public20240518",
    "alibabacloud_tea_openapi",
    "darabonba",
    "alibabacloud_credentials",
)
PRELUDE = "import airflow.sdk, pendulum"

_HEADER = '''\
"""Benchmark DAG: {what}."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG
{imports}

with DAG(
    dag_id="bench_parse_{name}",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["dataworks", "benchmark"],
):
{tasks}
    create_run >> wait_for_run
'''

PROVIDER_TASKS = """\
    create_run = CreatePipelineRunOperator(
        task_id="create_run",
        dataworks_conn_id="dataworks_default",
        object_id="8600000000000000003",
        wait_for_completion=False,
    )
    wait_for_run = PipelineRunSensor(
        task_id="wait_for_run",
        dataworks_conn_id="dataworks_default",
        pipeline_run_id="{{ ti.xcom_pull(task_ids='create_run') }}",
        advance_stages=True,
        deferrable=True,
        poke_interval=30,
    )
"""

BASELINE_TASKS = """\
    create_run = BaseOperator(task_id="create_run")
    wait_for_run = BaseOperator(task_id="wait_for_run")
"""

# Runs in the measured interpreter: pre-imports, then times one statement; prints JSON.
_PROBE = textwrap.dedent(
    """
    import json, resource, sys, time
    {prelude}
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    modules0 = len(sys.modules)
    top0 = {{m.split(".")[0] for m in sys.modules}}
    t0 = time.perf_counter()
    {statement}
    seconds = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    prefixes = {prefixes!r}
    sdk = sorted({{m.split(".")[0] for m in sys.modules if m.startswith(prefixes)}})
    packages = sorted({{m.split(".")[0] for m in sys.modules}} - top0)
    print("BENCH_PROBE " + json.dumps({{"seconds": seconds, "rss_mb": (rss1 - rss0) / 1024,
          "peak_rss_mb": rss1 / 1024, "modules": len(sys.modules) - modules0, "sdk_modules": sdk,
          "packages": packages}}))
    """
)


def _load_file_statement(path: Path) -> str:
    return (
        "import importlib.util as _u; "
        f"_s = _u.spec_from_file_location('bench_dag_{path.stem}', {str(path)!r}); "
        "_m = _u.module_from_spec(_s); _s.loader.exec_module(_m)"
    )


def write_dags() -> dict[str, Path]:
    """Write the two DAG files; return their paths."""
    PARSE_DIR.mkdir(parents=True, exist_ok=True)
    files = {
        "provider": _HEADER.format(
            what="a CreatePipelineRunOperator and a PipelineRunSensor",
            name="provider",
            imports="from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator\n"
            "from airflow_provider_dataworks.sensors.pipeline_run import PipelineRunSensor",
            tasks=PROVIDER_TASKS,
        ),
        "baseline": _HEADER.format(
            what="the same DAG with two empty BaseOperator tasks",
            name="baseline",
            imports="from airflow.sdk import BaseOperator",
            tasks=BASELINE_TASKS,
        ),
    }
    paths = {}
    for name, text in files.items():
        path = PARSE_DIR / f"bench_parse_{name}.py"
        path.write_text(text)
        paths[name] = path
    return paths


def _probe(python: str, prelude: str, statement: str, env: dict[str, str]) -> dict[str, Any]:
    code = _PROBE.format(prelude=prelude or "pass", statement=statement, prefixes=SDK_PREFIXES)
    done = subprocess.run(
        pinned([python, "-c", code], CLIENT_CPU),
        capture_output=True,
        text=True,
        env=env,
        cwd=PARSE_DIR,
        timeout=180,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_PROBE "):
            return json.loads(line[len("BENCH_PROBE ") :])
    raise BenchmarkError(f"import probe failed ({statement}): {done.stderr[-2000:]}")


def ensure_peer_venv(timeout: float = 300) -> dict[str, Any]:
    """Build (once) a scratch venv that sees the project venv's packages plus the Alibaba provider."""
    marker = PEER_VENV / ".bench-installed"
    python = PEER_VENV / "bin" / "python"
    if marker.exists() and marker.read_text().strip() == PEER_PACKAGE:
        return {"python": str(python), "install_seconds": None, "cached": True}
    started = time.time()
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True, timeout=120)
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # The project venv's packages are visible (not copied); pip installs only what is missing,
        # into the scratch venv, and never touches the project venv.
        project_site = sysconfig.get_paths()["purelib"]
        Path(site, "_bench_project_venv.pth").write_text(f"import site; site.addsitedir({project_site!r})\n")
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", PEER_PACKAGE],
            check=True,
            timeout=timeout,
            env=clean_env(),
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as err:
        detail = getattr(err, "stderr", None) or b""
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        return {"error": f"{type(err).__name__}: {err} {detail[-500:]}".strip()}
    marker.write_text(PEER_PACKAGE)
    return {"python": str(python), "install_seconds": round(time.time() - started, 1), "cached": False}


def run(smoke: bool = False) -> dict[str, Any]:
    """Measure every configuration; return min/median/max per configuration and the derived figures."""
    paths = write_dags()
    env = clean_env(AIRFLOW_HOME=str(OUT / "airflow-home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed provider has its .pyc files; so should we
    configs: dict[str, tuple[str, str, str]] = {
        "baseline": (PYTHON, PRELUDE, _load_file_statement(paths["baseline"])),
        "provider": (PYTHON, PRELUDE, _load_file_statement(paths["provider"])),
        "sdk_client": (PYTHON, "import airflow.sdk", f"import {SDK_MODULE}"),
    }
    if not smoke:
        configs.update(
            {
                "baseline_cold": (PYTHON, "", _load_file_statement(paths["baseline"])),
                "provider_cold": (PYTHON, "", _load_file_statement(paths["provider"])),
                "sdk_client_cold": (PYTHON, "", f"import {SDK_MODULE}"),
            }
        )
    peer = {"skipped": "smoke run"} if smoke else ensure_peer_venv()
    if "python" in peer:
        configs["peer_maxcompute"] = (peer["python"], "import airflow.sdk", f"import {PEER_MODULE}")
    reps = 1 if smoke else 5
    # the figures behind the targets get 5 repeats, the context rows 3
    wanted = {name: reps if name in ("baseline", "provider", "sdk_client") else min(reps, 3) for name in configs}
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    if not smoke:
        for python, prelude, statement in configs.values():
            _probe(python, prelude, statement, env)  # warm-up: writes .pyc files
    for rep in range(reps):
        for name, (python, prelude, statement) in configs.items():
            if rep < wanted[name]:
                samples[name].append(_probe(python, prelude, statement, env))
    return _derive(samples, peer, reps)


def _derive(samples: dict[str, list[dict[str, Any]]], peer: dict[str, Any], reps: int) -> dict[str, Any]:
    table = {
        name: {
            "seconds": spread(s["seconds"] for s in runs),
            "rss_mb": spread(s["rss_mb"] for s in runs),
            "modules": spread(s["modules"] for s in runs),
            "sdk_modules": sorted({m for s in runs for m in s["sdk_modules"]}),
        }
        for name, runs in samples.items()
    }
    # paired differences (repeat i of provider minus repeat i of baseline), then the median
    added_s = [p["seconds"] - b["seconds"] for p, b in zip(samples["provider"], samples["baseline"], strict=True)]
    added_rss = [p["rss_mb"] - b["rss_mb"] for p, b in zip(samples["provider"], samples["baseline"], strict=True)]
    sdk_s = statistics.median(s["seconds"] for s in samples["sdk_client"])
    sdk_rss = statistics.median(s["rss_mb"] for s in samples["sdk_client"])
    added = {
        "seconds": spread(added_s),
        "rss_mb": spread(added_rss),
        "time_ratio_to_sdk": statistics.median(added_s) / sdk_s if sdk_s > 0 else None,
        "rss_ratio_to_sdk": statistics.median(added_rss) / sdk_rss if sdk_rss > 0 else None,
        "sdk_imported": table["provider"]["sdk_modules"],
        # top-level packages the provider DAG imports that the baseline DAG does not
        "extra_packages": sorted(
            set(samples["provider"][0].get("packages", [])) - set(samples["baseline"][0].get("packages", []))
        ),
    }
    if "provider_cold" in samples:
        cold = [
            p["seconds"] - b["seconds"] for p, b in zip(samples["provider_cold"], samples["baseline_cold"], strict=True)
        ]
        added["cold_seconds"] = spread(cold)
        added["cold_sdk_imported"] = table["provider_cold"]["sdk_modules"]
    return {"configs": table, "added": added, "peer": peer, "reps": reps, "root": str(ROOT)}
