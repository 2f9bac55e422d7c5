"""The managed mosquitto: each listener does what L506 tests rely on, and faults are real."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import trustme

from hil.broker import (
    AUTH,
    PLAIN,
    PLAIN6,
    TLS,
    TLS_AUTH,
    TLS_REFUSING,
    Broker,
    BrokerError,
    find_program,
)
from hil.broker import broker as broker_module
from hil.broker.config import Listener, render_acl
from hil.broker.tls import make_tls_material
from hil.fixtures.peer import ConnectRefused, Peer, PeerFactory


def _tls_handshake(port: int, context: ssl.SSLContext) -> str:
    """Handshake with a broker listener; the negotiated TLS version."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return str(tls.version())


def _verifying_context(ca_pem: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_pem))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def test_plain_listener_accepts_anonymous(peer_factory: PeerFactory) -> None:
    assert peer_factory().connected


@pytest.mark.parametrize("listener", [AUTH, TLS_AUTH])
def test_password_listener_accepts_right_credentials(
    peer_factory: PeerFactory, listener: str
) -> None:
    assert peer_factory(listener=listener, user="hil").connected


@pytest.mark.parametrize("listener", [AUTH, TLS_AUTH])
@pytest.mark.parametrize(
    ("user", "password"),
    [(None, None), ("hil", "wrong-password"), ("nobody", "whatever")],
    ids=["anonymous", "wrong-password", "unknown-user"],
)
def test_password_listener_refuses_bad_credentials(
    peer_factory: PeerFactory, listener: str, user: str | None, password: str | None
) -> None:
    # An L506 reports this CONNACK as +MCONNECT: FAILURE,6.
    peer = peer_factory(listener=listener, user=user, password=password, connect=False)
    with pytest.raises(ConnectRefused) as refused:
        peer.connect(timeout=5)
    assert refused.value.return_code in (4, 5)  # bad user name or password / not authorised


def test_tls_listener_verified_with_broker_ca(tls_peer: Peer, broker: Broker) -> None:
    assert tls_peer.connected
    assert _tls_handshake(broker.tls_port, _verifying_context(broker.ca_pem)) == "TLSv1.2"


def test_tls_listener_fails_verification_against_another_ca(
    broker: Broker, tmp_path: Path
) -> None:
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    with pytest.raises(ssl.SSLCertVerificationError):
        _tls_handshake(broker.tls_port, _verifying_context(stranger))


def test_brokers_handed_one_set_of_certificates_share_it(tmp_path: Path) -> None:
    """What the workers of a parallel run do: one CA for all their brokers, made once."""
    shared = make_tls_material(tmp_path / "shared")
    with Broker(tmp_path / "a", tls=shared) as a, Broker(tmp_path / "b", tls=shared) as b:
        assert a.ca_pem == b.ca_pem == shared.ca_pem
        assert not (tmp_path / "a" / "tls").exists()
        for broker in (a, b):
            assert _tls_handshake(broker.tls_port, _verifying_context(shared.ca_pem)) == "TLSv1.2"


def test_refusing_tls_listener_fails_handshake_without_client_cert(
    broker: Broker, peer_factory: PeerFactory
) -> None:
    # The handshake itself fails (what an L506 reports as FAILURE,8), not a later read.
    with pytest.raises(ssl.SSLError):
        _tls_handshake(broker.tls_refusing_port, _verifying_context(broker.ca_pem))
    with pytest.raises(ssl.SSLError):
        peer_factory(listener=TLS_REFUSING, connect=False).connect(timeout=5)


def test_refusing_tls_listener_accepts_the_ca_signed_client_cert(
    peer_factory: PeerFactory,
) -> None:
    assert peer_factory(listener=TLS_REFUSING, client_cert=True).connected


def test_ipv6_loopback_listener(broker: Broker, peer_factory: PeerFactory) -> None:
    if broker.plain6_port is None:
        pytest.skip("::1 cannot be bound on this machine")
    assert peer_factory(listener=PLAIN6).connected


def test_reader_acl_limits_delivery_and_publishing(peer_factory: PeerFactory) -> None:
    reader = peer_factory(listener=AUTH, user="reader")
    writer = peer_factory(listener=AUTH, user="hil")
    tag = uuid.uuid4().hex
    reader.subscribe(f"public/{tag}", qos=1)
    reader.subscribe(f"private/{tag}", qos=1)  # granted by mosquitto, but nothing comes
    writer.subscribe(f"public/{tag}/from-reader", qos=1)

    writer.publish(f"private/{tag}", b"secret", qos=1)
    writer.publish(f"public/{tag}", b"news", qos=1)
    assert reader.expect(timeout=5).payload == b"news"
    reader.expect_nothing(within=0.3)

    reader.publish(f"public/{tag}/from-reader", b"dropped", qos=1)
    writer.expect_nothing(f"public/{tag}/from-reader", within=0.3)


def test_kill_then_restart_on_the_same_ports(tmp_path: Path, peer_factory: PeerFactory) -> None:
    with Broker(tmp_path / "own") as own:
        ports = own.ports
        own.kill()
        assert not own.running
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((own.host, own.plain_port), timeout=2).close()
        own.restart()
        assert own.running
        assert own.ports == ports
        socket.create_connection((own.host, own.plain_port), timeout=2).close()


def test_port_taken_before_the_first_start_is_picked_again(tmp_path: Path) -> None:
    own = Broker(tmp_path / "own")
    taken = own.plain_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        with own:
            assert own.plain_port != taken
            socket.create_connection((own.host, own.plain_port), timeout=2).close()


def test_stop_is_graceful_and_logged(tmp_path: Path) -> None:
    own = Broker(tmp_path / "own").start()
    own.stop()
    assert not own.running
    assert "terminating" in own.log_text()


def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="scripts/setup"):
        Broker(tmp_path, binary=str(tmp_path / "no-such-mosquitto"))
    with pytest.raises(BrokerError, match="apt-get install mosquitto"):
        find_program("mosquitto-that-does-not-exist")


def test_process_exiting_at_start_is_reported(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="exited with status 1"):
        Broker(tmp_path, binary="/bin/false").start(timeout=5)


def test_log_since_returns_only_new_log(broker: Broker, peer_factory: PeerFactory) -> None:
    before = f"before-{uuid.uuid4().hex[:8]}"
    after = f"after-{uuid.uuid4().hex[:8]}"
    peer_factory(client_id=before)
    mark = broker.log_mark()
    peer_factory(client_id=after)
    since = broker.log_since(mark)
    assert after in since
    assert before not in since
    assert before in broker.log_text()


def test_kick_drops_the_client_by_session_takeover(
    broker: Broker, peer_factory: PeerFactory
) -> None:
    client_id = f"dut-{uuid.uuid4().hex[:8]}"
    victim = peer_factory(listener=AUTH, user="hil", client_id=client_id)
    assert broker.kick(client_id)
    victim.wait_disconnected(timeout=5)
    assert not victim.connected
    assert not broker.kick(f"nobody-{uuid.uuid4().hex[:8]}")


def test_acl_naming_a_user_without_password_is_an_error() -> None:
    with pytest.raises(ValueError, match="ghost"):
        render_acl(["hil"], {"ghost": [("read", "#")]})


# A fault test may leave the session broker dead; the next test must find it running.
# These two run in file order (pytest's default); alone, the second passes trivially.
def test_fault_test_kills_the_session_broker(broker: Broker) -> None:
    broker.kill()
    assert not broker.running


def test_next_test_finds_the_broker_running_again(
    broker: Broker, peer_factory: PeerFactory
) -> None:
    assert broker.running
    assert peer_factory(listener=TLS).connected


def test_rig_bind_address_and_fixed_ports_are_used(tmp_path: Path) -> None:
    """A rig chooses the address the broker listens on and fixes the plain and TLS ports
    (IPv6 loopback here: the test never listens beyond this machine)."""
    fixed_plain, fixed_tls = broker_module._free_ports(["::1", "::1"])
    with Broker(tmp_path, bind="::1", plain_port=fixed_plain, tls_port=fixed_tls) as b:
        assert (b.plain_port, b.tls_port) == (fixed_plain, fixed_tls)
        assert f"listener {fixed_plain} ::1" in b.config_path.read_text()
        with socket.create_connection(("::1", fixed_plain), timeout=2):
            pass


def test_clients_here_dial_loopback_for_a_wildcard_bind() -> None:
    assert Listener(PLAIN, 1883, "0.0.0.0").local_address == "127.0.0.1"
    assert Listener(PLAIN, 1883, "::").local_address == "::1"
    assert Listener(PLAIN, 1883, "::1").local_address == "::1"


def test_hil_broker_serves_the_port_asked_for_and_leaves_no_keys_behind() -> None:
    """`hil broker --port N` listens on N; Ctrl-C stops it and its temp folder (config, CA
    and server keys, log) is gone."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "broker", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line or "running" in line:
                break
            lines.append(line)
        assert any(f"127.0.0.1:{port}" in line for line in lines), lines
        log = next(line.split()[-1] for line in lines if line.startswith("log"))
        folder = Path(log).parent
        assert folder.is_dir()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert not folder.exists(), f"{folder} left behind"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_ports_are_chosen_free_beside_on_the_taps_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tap listens on ::1 on each listener's port: a port already taken on ::1 is passed
    over, though free on 127.0.0.1 (a module's connection to another tap may hold one)."""
    if not broker_module.ipv6_loopback_available():
        pytest.skip("::1 cannot be bound on this machine")
    taken = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    taken.bind(("::1", 0))
    busy = taken.getsockname()[1]
    offered = iter([busy])
    real_bound = broker_module._bound

    def first_the_busy_one(address: str, port: int) -> socket.socket:
        if address == "127.0.0.1" and port == 0:
            chosen = next(offered, 0)
            if chosen:
                return real_bound(address, chosen)
        return real_bound(address, port)

    monkeypatch.setattr(broker_module, "_bound", first_the_busy_one)
    try:
        ports = broker_module._free_ports(["127.0.0.1", "127.0.0.1"], beside="::1")
    finally:
        taken.close()
    assert busy not in ports and len(set(ports)) == 2
    for port in ports:  # free on ::1 when chosen
        real_bound("::1", port).close()
