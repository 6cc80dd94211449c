"""Start and stop the emulator's HTTP(S) listener on the current event loop."""

from __future__ import annotations

import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .core import EmulatorCore
from .server import make_app
from .tls import server_context, write_certificates


@dataclass
class Listener:
    """A running emulator listener.

    :param endpoint: ``host:port`` as the SDK's ``Config.endpoint`` wants it.
    :param protocol: ``http`` or ``https``.
    :param ca_path: the CA bundle clients must trust in HTTPS mode.
    """

    runner: web.AppRunner
    host: str
    port: int
    protocol: str
    ca_path: str | None
    temp_dir: str | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` of the listener (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the listener."""
        return f"{self.protocol}://{self.endpoint}"

    async def close(self) -> None:
        """Stop serving, close every connection and free the port."""
        await self.runner.cleanup()
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


async def start_listener(
    core: EmulatorCore,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: bool = False,
    cert_dir: str | Path | None = None,
) -> Listener:
    """Serve ``core`` on ``host:port`` (port 0: a free one) and return the running listener."""
    temp_dir = None
    ca_path = None
    ssl_context = None
    if tls:
        if cert_dir is None:
            temp_dir = tempfile.mkdtemp(prefix="dataworks-emulator-")
            cert_dir = temp_dir
        ca, cert, key = write_certificates(Path(cert_dir))
        ca_path = str(ca)
        ssl_context = server_context(cert, key)
    # Keep-alive connections of polling clients must not hold shutdown up.
    runner = web.AppRunner(make_app(core), access_log=None, handle_signals=False, shutdown_timeout=0.25)
    await runner.setup()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    site = web.SockSite(runner, sock, ssl_context=ssl_context, backlog=1024)
    await site.start()
    listener = Listener(
        runner=runner,
        host=host,
        port=sock.getsockname()[1],
        protocol="https" if tls else "http",
        ca_path=ca_path,
        temp_dir=temp_dir,
    )
    primary = core.settings.credentials[0] if core.settings.credentials else None
    core.info = {
        "endpoint": listener.endpoint,
        "protocol": listener.protocol,
        "url": listener.url,
        "ca_path": ca_path,
        "access_key_id": primary.access_key_id if primary else None,
        "access_key_secret": primary.access_key_secret if primary else None,
    }
    return listener
