"""The host's TLS handshake on a connection already open (a profile that makes it at
MCONNECT, MIPSTART-6): the firmware hears TlsReady, or SocketFailed "tls" with the socket
let go."""

from __future__ import annotations

import asyncio
import ssl

import trustme

from hil.sim.firmware import (
    OpenSocket,
    SendSocket,
    SocketData,
    SocketEvent,
    SocketFailed,
    SocketOpened,
    StartTls,
    TlsReady,
)
from hil.sim.host import SimConfig, SimHost, new_event_loop


class Recorder:
    """Stands in for the firmware: keeps what the host reports, asks for nothing."""

    def __init__(self) -> None:
        self.events: list[SocketEvent] = []
        self.changed = asyncio.Event()

    def socket_event(self, event: SocketEvent, now: float) -> list[object]:
        self.events.append(event)
        self.changed.set()
        return []

    def next_deadline(self) -> None:
        return None

    async def until(self, kind: type, timeout: float = 5.0) -> SocketEvent:
        async def seen() -> SocketEvent:
            while True:
                found = [e for e in self.events if isinstance(e, kind)]
                if found:
                    return found[0]
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(seen(), timeout)


async def _handshake_against(tls_server: bool) -> tuple[Recorder, SimHost, bytes]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    received = bytearray()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if tls_server:
                await writer.start_tls(server_ctx)
                writer.write(b"hello")
                received.extend(await reader.read(5))
            else:
                await reader.read(1)  # a ClientHello on a plain port: hang up
        except (OSError, ssl.SSLError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    recorder = Recorder()
    host = SimHost(recorder, SimConfig())  # type: ignore[arg-type]
    host._loop = asyncio.get_running_loop()
    try:
        host._apply([OpenSocket(1, "127.0.0.1", port, tls=False)])
        await recorder.until(SocketOpened)
        host._apply([StartTls(1)])
        if tls_server:
            await recorder.until(TlsReady)
            host._apply([SendSocket(1, b"world")])
            data = await recorder.until(SocketData)
            assert isinstance(data, SocketData) and data.data == b"hello"
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.01)
        else:
            await recorder.until(SocketFailed)
    finally:
        for sock in host._sockets.values():
            sock.task.cancel()
        server.close()
    return recorder, host, bytes(received)


def test_start_tls_on_an_open_connection_then_data_both_ways() -> None:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        recorder, _, received = runner.run(_handshake_against(tls_server=True))
    assert received == b"world"
    assert not any(isinstance(e, SocketFailed) for e in recorder.events)


def test_start_tls_against_a_plain_port_fails_as_tls_and_lets_the_socket_go() -> None:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        recorder, host, _ = runner.run(_handshake_against(tls_server=False))
    failed = [e for e in recorder.events if isinstance(e, SocketFailed)]
    assert [f.kind for f in failed] == ["tls"]
    assert 1 not in host._sockets
