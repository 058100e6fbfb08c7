"""The Origin gate over loopback: a foreign web origin gets 403 and not one byte of the server, native clients and
allowed origins reach a real WebSocket server through it, bad heads are bounded."""

import asyncio
import socket
import ssl
import time

import pytest

from pose_perception.core.origin_gate import FORBIDDEN, OriginGate, OriginGateError, origin_allowed, request_origins

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402


def handshake(port: int, *headers: str) -> bytes:
    lines = [
        "GET / HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def raw_exchange(port: int, request: bytes, timeout_s: float = 5.0) -> bytes:
    """Send `request`, return everything received until the gate closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:  # the gate closed with our unread bytes pending: a refusal too
            pass
        return received


def test_origin_rules():
    allowed = frozenset({"https://app.foxglove.dev"})
    assert origin_allowed([], allowed)
    assert origin_allowed(["HTTPS://App.Foxglove.dev/"], allowed)
    for refused in (
        ["https://evil.example"],
        ["null"],
        ["https://app.foxglove.dev", "https://evil.example"],
        ["https://app.foxglove.dev.evil.example"],
        ["http://app.foxglove.dev"],
    ):
        assert not origin_allowed(refused, allowed), refused
    assert request_origins(handshake(1, "origin:  https://a.example ")) == ["https://a.example"]
    assert request_origins(handshake(1)) == []


def test_gate_refuses_foreign_origins_and_splices_allowed_ones():
    upstream_connections = []
    logs = []

    async def echo(ws):
        upstream_connections.append(ws.request.headers.get("Origin"))
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            upstream_port = server.sockets[0].getsockname()[1]
            gate = OriginGate(
                "127.0.0.1",
                upstream_port,
                allowed_origins=["https://app.foxglove.dev", "http://localhost:3000"],
                head_timeout_s=0.5,
                log=logs.append,
            )
            port = gate.start()
            try:
                # Refused: 403 during the handshake, and nothing from the server ever.
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(f"ws://127.0.0.1:{port}", origin="https://evil.example", open_timeout=5):
                        pass
                assert refused.value.response.status_code == 403
                for _ in range(3):
                    reply = await asyncio.to_thread(raw_exchange, port, handshake(port, "Origin: https://evil.example"))
                    assert reply == FORBIDDEN
                assert upstream_connections == []
                assert gate.refused == 4 and len(logs) == 1 and "https://evil.example" in logs[0]

                # Allowed: no Origin (native client), the Foxglove app, an added origin; data flows both ways.
                for origin in (None, "https://app.foxglove.dev", "http://localhost:3000"):
                    async with connect(f"ws://127.0.0.1:{port}", origin=origin, open_timeout=5) as ws:
                        payload = b"\x00" * 200_000 + origin.encode() if origin else b"native"
                        await ws.send(payload)
                        assert await asyncio.wait_for(ws.recv(), 5) == payload
                assert upstream_connections == [None, "https://app.foxglove.dev", "http://localhost:3000"]

                # Bounded: an endless head and a silent client are answered 400 and closed, never forwarded.
                reply = await asyncio.to_thread(raw_exchange, port, b"GET / HTTP/1.1\r\nX: " + b"a" * 40_000)
                assert reply in (b"", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                t0 = time.monotonic()
                reply = await asyncio.to_thread(raw_exchange, port, b"GET / HTTP/1.1\r\n")
                assert reply.startswith(b"HTTP/1.1 400") and time.monotonic() - t0 < 3
                assert len(upstream_connections) == 3
            finally:
                gate.stop()

    asyncio.run(main())


def test_gate_reports_a_taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        gate = OriginGate("127.0.0.1", 1, port=taken.getsockname()[1])
        with pytest.raises(OriginGateError, match="cannot listen"):
            gate.start()


@pytest.fixture
def tls(tmp_path):
    """(certificate PEM, server SSLContext) of a throw-away loopback certificate, as the bridge makes."""
    from pose_perception.core.origin_gate import self_signed_tls

    try:
        cert, key = self_signed_tls(days=1)
    except OriginGateError as exc:
        pytest.skip(str(exc))
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    return cert, server_ctx


def test_gate_speaks_tls_to_a_pinned_upstream_that_browsers_cannot_use(tls):
    cert, server_ctx = tls

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as server:
            upstream_port = server.sockets[0].getsockname()[1]
            gate = OriginGate("127.0.0.1", upstream_port, upstream_tls_cert=cert)
            port = gate.start()
            try:
                async with connect(f"ws://127.0.0.1:{port}", origin="https://app.foxglove.dev", open_timeout=5) as ws:
                    await ws.send("through")
                    assert await asyncio.wait_for(ws.recv(), 5) == "through"
                for uri, ctx in (
                    (f"ws://127.0.0.1:{upstream_port}", None),
                    (f"wss://127.0.0.1:{upstream_port}", ssl.create_default_context()),
                ):
                    with pytest.raises((OSError, websockets.exceptions.InvalidMessage, asyncio.TimeoutError)):
                        async with connect(uri, ssl=ctx, open_timeout=3):
                            pass
            finally:
                gate.stop()

    asyncio.run(main())


def test_a_connection_ends_on_both_sides_when_the_client_leaves(tls):
    cert, server_ctx = tls
    closed = []

    async def hold(ws):
        await ws.send("hello")
        await ws.wait_closed()
        closed.append(True)

    async def main():
        async with serve(hold, "127.0.0.1", 0, ssl=server_ctx) as server:
            gate = OriginGate("127.0.0.1", server.sockets[0].getsockname()[1], upstream_tls_cert=cert)
            port = gate.start()
            try:
                reply = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 5)
                reply.sendall(handshake(port))
                assert b"101" in await asyncio.to_thread(reply.recv, 4096)
                reply.close()  # no close frame: the client just goes away
                for _ in range(100):
                    if closed:
                        break
                    await asyncio.sleep(0.05)
                assert closed, "upstream connection left open after the client left"
            finally:
                gate.stop()

    asyncio.run(main())
