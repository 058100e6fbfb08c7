"""A TCP front that refuses WebSocket handshakes from web pages not on an Origin allow-list.

A browser lets any page open `ws://127.0.0.1:PORT`; the only thing telling our server which page asks is the
handshake's `Origin` header (RFC 6455 10.2). foxglove-sdk 0.30 offers no hook on handshake headers, so this front
reads the HTTP upgrade request, answers 403 to a foreign Origin and otherwise splices the bytes, unchanged, both
ways to the real server listening on a loopback port. ROS-free; it runs its own asyncio loop on a thread.

A page could still scan loopback ports for the real server itself; started with a throw-away self-signed
certificate (`self_signed_tls`, TLS-only), that server cannot be used by a browser (no trust, and a WebSocket gets no
certificate prompt), while the gate, which pins that certificate, speaks TLS to it.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

# Native clients (Foxglove desktop, scripts) send no Origin; browsers always send one on a WebSocket handshake.
DEFAULT_ALLOWED_ORIGINS = ("https://app.foxglove.dev",)
FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class OriginGateError(RuntimeError):
    """The gate could not start (port taken, bad address)."""


class OriginSpecError(ValueError):
    """An allowed origin that no browser would ever send, so it would silently match nothing."""


def parse_allowed_origin(origin: str) -> str:
    """Check one allow-list entry ('https://host' or 'http://host:port', as a browser serializes an Origin) and return
    it normalized. A bare host, a path or a wildcard is refused rather than left to match nothing."""
    norm = normalize_origin(origin)
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*://[a-z0-9.\-\[\]:]+", norm):
        raise OriginSpecError(
            f"allowed origin {origin!r} is not SCHEME://HOST[:PORT] (for example "
            f"'http://localhost:8080'); paths and wildcards are not supported"
        )
    return norm


def self_signed_tls(days: int = 30) -> tuple[bytes, bytes]:
    """A fresh P-256 certificate for 127.0.0.1 and its PKCS#8 key, PEM (cert, key), made by the `openssl` command
    (the standard library cannot make certificates). Raises OriginGateError when openssl is missing or fails."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        try:
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    str(days),
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                    "-keyout",
                    str(key),
                    "-out",
                    str(cert),
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise OriginGateError(f"cannot make a loopback TLS certificate with openssl: {exc}") from exc
        return cert.read_bytes(), key.read_bytes()


def normalize_origin(origin: str) -> str:
    """Origins compare case-insensitively, without a trailing slash:
    'HTTPS://App.Foxglove.dev/' -> 'https://app.foxglove.dev'."""
    return origin.strip().rstrip("/").lower()


def request_origins(head: bytes) -> list[str]:
    """Every `Origin` header value of an HTTP request head (request line + headers, up to the blank line)."""
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [
        value.strip()
        for name, sep, value in (line.partition(":") for line in lines)
        if sep and name.strip().lower() == "origin"
    ]


def origin_allowed(origins: list[str], allowed: frozenset[str]) -> bool:
    """No Origin header: a native client, allowed. Exactly one, on the list: allowed. Anything else (several, 'null',
    another site) is refused."""
    if not origins:
        return True
    return len(origins) == 1 and normalize_origin(origins[0]) in allowed


class OriginGate:
    """Listens on (host, port) and forwards allowed connections to (upstream_host, upstream_port).

    max_head_bytes and head_timeout_s bound what one connection may cost before it is checked; a head that is too
    long or too slow is answered 400 and closed. Refusals are logged with `log`, at most once per log_every_s per
    origin, and counted in `refused`. upstream_tls_cert: PEM certificate of a TLS-only upstream, pinned."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        host: str = "127.0.0.1",
        port: int = 0,
        allowed_origins: Iterable[str] = DEFAULT_ALLOWED_ORIGINS,
        max_head_bytes: int = 16384,
        head_timeout_s: float = 5.0,
        log: Callable[[str], None] = print,
        log_every_s: float = 10.0,
        upstream_tls_cert: Optional[bytes] = None,
    ):
        self.upstream = (upstream_host, upstream_port)
        self._upstream_ssl = (
            ssl.create_default_context(cadata=upstream_tls_cert.decode()) if upstream_tls_cert else None
        )
        self.host, self.port = host, port
        self.allowed = frozenset(parse_allowed_origin(o) for o in allowed_origins)
        self.max_head_bytes, self.head_timeout_s = max_head_bytes, head_timeout_s
        self.log, self.log_every_s = log, log_every_s
        self.refused = 0
        self._last_log: dict[str, float] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._server: Optional[asyncio.base_events.Server] = None

    def start(self) -> int:
        """Bind and serve on a background thread; returns the bound port."""
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def main():
            asyncio.set_event_loop(self._loop)
            try:
                self._server = self._loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self.port, limit=self.max_head_bytes)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except OSError as exc:
                failure.append(exc)
                return
            finally:
                ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="origin_gate", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._loop.close()
            raise OriginGateError(f"cannot listen on {self.host}:{self.port}: {failure[0]}")
        return self.port

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return

        async def shutdown():
            self._server.close()
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # let each connection close its sockets

        if self._server is not None:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        self._loop = self._thread = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.head_timeout_s)
            except (asyncio.TimeoutError, asyncio.LimitOverrunError, asyncio.IncompleteReadError, ValueError):
                writer.write(BAD_REQUEST)
                return
            origins = request_origins(head)
            if not origin_allowed(origins, self.allowed):
                self._refuse(", ".join(origins))
                writer.write(FORBIDDEN)
                return
            up_reader, up_writer = await asyncio.open_connection(*self.upstream, ssl=self._upstream_ssl)
            try:
                up_writer.write(head)
                pipes = [asyncio.create_task(_pipe(reader, up_writer)), asyncio.create_task(_pipe(up_reader, writer))]
                try:
                    # A WebSocket has no half-closed state (and TLS cannot send EOF): when one side ends, both do.
                    await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in pipes:
                        task.cancel()
            finally:
                up_writer.close()
        except (ConnectionError, OSError):
            pass  # a peer that goes away is the normal end of a connection
        finally:
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                pass
            writer.close()

    def _refuse(self, origin: str) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._last_log.get(origin, -float("inf")) >= self.log_every_s:
            if len(self._last_log) >= 1024:  # many distinct origins must not grow memory without bound
                self._last_log.clear()
            self._last_log[origin] = now
            self.log(
                f"[origin_gate] refused a WebSocket handshake from Origin {origin!r} ({self.refused} refused so "
                f"far); allow a trusted web app with --foxglove-allow-origin"
            )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF or a broken connection."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
