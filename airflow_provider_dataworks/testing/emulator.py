"""Command line: run the DataWorks emulator in the foreground.

``python -m airflow_provider_dataworks.testing.emulator`` or ``dataworks-emulator``. Prints one
line, ``DataWorks emulator listening on http://HOST:PORT`` (plus `` (ca=PATH)`` with ``--tls``),
then serves until SIGINT or SIGTERM and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from .auth import DEFAULT_ACCOUNT_ID, Credential
from .core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_INIT_SECONDS, EmulatorCore, Settings
from .runtime import start_listener
from .seed import load_seed
from .shapes import FULL, LIST_STAGES


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="dataworks-emulator",
        description="Local emulator of the Alibaba Cloud DataWorks OpenAPI (pipeline runs).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--access-key-id", default=DEFAULT_ACCESS_KEY_ID, help="default: %(default)s")
    parser.add_argument("--access-key-secret", default=DEFAULT_ACCESS_KEY_SECRET, help="default: %(default)s")
    parser.add_argument(
        "--account-id", default=DEFAULT_ACCOUNT_ID, help="Creator of runs made with that key (default: %(default)s)"
    )
    parser.add_argument("--seed", metavar="FILE.json", help="seed file (default: the packaged demo seed)")
    parser.add_argument(
        "--stage-seconds", type=float, default=1.0, help="duration of every stage (default: %(default)s)"
    )
    parser.add_argument(
        "--init-seconds",
        type=float,
        default=DEFAULT_INIT_SECONDS,
        help="how long a new run reports Init before its first stage starts (default: %(default)s)",
    )
    parser.add_argument("--read-qps", type=float, help="answer 429 Throttling.User above this many reads a second")
    parser.add_argument("--write-qps", type=float, help="answer 429 Throttling.User above this many writes a second")
    parser.add_argument(
        "--qps", type=float, help="answer 429 Throttling.User above this many calls of any kind a second"
    )
    parser.add_argument(
        "--list-stages",
        choices=LIST_STAGES,
        default=FULL,
        help="ListPipelineRuns rows carry full Stages, none (missing) or [] (empty) (default: %(default)s)",
    )
    parser.add_argument("--description-limit", type=int, help="keep only this many characters of a Description")
    parser.add_argument("--max-page-size", type=int, help="serve at most this many rows a page of the run listings")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a throw-away CA")
    parser.add_argument("--cert-dir", help="where to write ca.pem and the server certificate (with --tls)")
    return parser


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM."""
    settings = Settings(
        seed=load_seed(args.seed),
        credentials=[Credential(args.access_key_id, args.access_key_secret, account_id=args.account_id)],
        stage_seconds=args.stage_seconds,
        init_seconds=args.init_seconds,
        read_qps=args.read_qps,
        write_qps=args.write_qps,
        qps=args.qps,
        list_stages=args.list_stages,
        description_limit=args.description_limit,
        max_page_size=args.max_page_size,
    )
    listener = await start_listener(EmulatorCore(settings), args.host, args.port, args.tls, args.cert_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    suffix = f" (ca={listener.ca_path})" if listener.ca_path else ""
    print(f"DataWorks emulator listening on {listener.url}{suffix}", flush=True)
    try:
        await stop.wait()
    finally:
        await listener.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator from the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.stage_seconds < 0 or args.init_seconds < 0:
        print("--stage-seconds and --init-seconds must be >= 0", file=sys.stderr)
        return 2
    if any(n is not None and n < 1 for n in (args.description_limit, args.max_page_size)):
        print("--description-limit and --max-page-size must be >= 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
