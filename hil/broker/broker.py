"""The real mosquitto binary as a managed process, with the listeners an L506 test needs."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import IO, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from hil.broker.config import (
    AclRule,
    Listener,
    render_acl,
    render_config,
    render_openssl_config,
)
from hil.broker.tls import TlsMaterial, make_tls_material

PLAIN = "plain"
AUTH = "auth"
TLS = "tls"
TLS_AUTH = "tls_auth"
TLS_REFUSING = "tls_refusing"
PLAIN6 = "plain6"

# sbin is not on a normal user's PATH, and that is where Debian puts the broker.
_SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
_INSTALL_HINT = "run scripts/setup (or: apt-get install mosquitto mosquitto-clients)"
_BIND_ATTEMPTS = 3
_RUNNING = re.compile(r"mosquitto version \S+ running")


class BrokerError(RuntimeError):
    """The broker could not be started, stopped or driven as asked."""


def find_program(name: str, near: str | None = None) -> str:
    """Path of an installed mosquitto program, or BrokerError saying how to install it."""
    found = shutil.which(name)
    if found:
        return found
    dirs = ([str(Path(near).parent)] if near else []) + list(_SEARCH_DIRS)
    for folder in dirs:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BrokerError(f"{name} not found on PATH nor in {', '.join(dirs)}: {_INSTALL_HINT}")


def ipv6_loopback_available() -> bool:
    """Whether ::1 can be bound here (containers often run without IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def _bound(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET,
                         socket.SOCK_STREAM)
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def _free_ports(addresses: Sequence[str], beside: str | None = None) -> list[int]:
    """One free port per address, all held open together so that none is handed out twice;
    with `beside`, each is free on that address too (a tap listens there on the same port)."""
    held: list[socket.socket] = []
    ports = []
    try:
        for address in addresses:
            for _ in range(100):
                sock = _bound(address, 0)
                held.append(sock)  # held even when taken beside: not offered again
                port: int = sock.getsockname()[1]
                if beside in (None, address):
                    break
                try:
                    held.append(_bound(beside, port))
                    break
                except OSError:
                    continue
            else:
                raise BrokerError(f"no port free on both {address} and {beside} after 100 tries")
            ports.append(port)
        return ports
    finally:
        for sock in held:
            sock.close()


class Broker:
    """A mosquitto process in ``folder``: plain, password, TLS and TLS-refusing listeners.

    Ports are chosen once (free ports on loopback) and kept across ``restart()``, so a
    client configured with them can reconnect after a fault test. Everything the broker
    needs (config, password file, ACL, certificates, log) lives in ``folder``.

    ``users`` (name → password) may connect on the ``auth`` listeners; ``acl`` restricts
    some of them (name → rules); ``tls_max_version`` caps TLS so that a refused client
    certificate fails the handshake itself (None: OpenSSL's default, TLS 1.3); ``tls``
    hands it certificates made once for several brokers (the workers of a parallel run)
    instead of making its own; ``tap`` is the address a recording tap will listen on beside
    each listener, on its port, so the ports are chosen free there too.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        folder: Path,
        *,
        binary: str | None = None,
        users: Mapping[str, str] | None = None,
        acl: Mapping[str, Sequence[AclRule]] | None = None,
        ipv6: bool = False,
        max_keepalive: int = 65535,
        tls_max_version: str | None = "TLSv1.2",
        bind: str = "127.0.0.1",
        plain_port: int = 0,
        tls_port: int = 0,
        tls: TlsMaterial | None = None,
        tap: str | None = None,
    ) -> None:
        self.folder = Path(folder)
        self._tap = tap
        self.binary = find_program("mosquitto") if binary is None else self._checked(binary)
        self._users = MappingProxyType(dict(users or {}))
        self._acl = dict(acl or {})
        self._ipv6 = ipv6
        self._max_keepalive = max_keepalive
        self._tls_max_version = tls_max_version
        self._bind = bind
        self._fixed = {PLAIN: plain_port, TLS: tls_port}
        self._listeners = self._pick_listeners()
        self._tls = tls  # None: made on first use, in the broker's folder
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None
        self._console_at_launch = 0
        self._log_at_launch = 0
        self._started_once = False

    @staticmethod
    def _checked(binary: str) -> str:
        path = shutil.which(binary) or binary
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            raise BrokerError(f"mosquitto binary {binary!r} not found or not executable: "
                              f"{_INSTALL_HINT}")
        return path

    def _pick_listeners(self) -> tuple[Listener, ...]:
        """Free ports on the bind address; the plain and TLS ports a rig fixes are kept.

        A real module on its own network needs the broker on an address it can reach
        (the rig's `[broker] bind`) and often on the ports configured in its firmware.
        """
        bind = self._bind
        specs = [
            Listener(PLAIN, 0, bind),
            Listener(AUTH, 0, bind, auth=True),
            Listener(TLS, 0, bind, tls=True),
            Listener(TLS_AUTH, 0, bind, tls=True, auth=True),
            Listener(TLS_REFUSING, 0, bind, tls=True, require_certificate=True),
        ]
        if self._ipv6:
            specs.append(Listener(PLAIN6, 0, address="::1"))
        free = iter(_free_ports([s.address for s in specs if not self._fixed.get(s.name)],
                                beside=self._tap))
        return tuple(
            Listener(s.name, self._fixed.get(s.name) or next(free), s.address, s.tls, s.auth,
                     s.require_certificate)
            for s in specs
        )

    # --- files -------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.folder / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        """The broker's own log (log_dest file); appended to across restarts."""
        return self.folder / "mosquitto.log"

    @property
    def console_path(self) -> Path:
        """stdout and stderr of the process: start-up errors land here, not in the log."""
        return self.folder / "console.log"

    @property
    def openssl_config_path(self) -> Path:
        return self.folder / "openssl.cnf"

    @property
    def ca_pem(self) -> Path:
        """CA certificate that clients use to verify the broker's TLS listeners."""
        return self._material().ca_pem

    @property
    def client_pem(self) -> Path:
        """Client certificate and key signed by the CA: what the refusing listener wants."""
        return self._material().client_pem

    def _material(self) -> TlsMaterial:
        if self._tls is None:
            self._tls = make_tls_material(self.folder / "tls")
        return self._tls

    def _write_password_file(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        path.touch(mode=0o600)
        if not self._users:
            return
        passwd = find_program("mosquitto_passwd", near=self.binary)
        for user, password in self._users.items():
            done = subprocess.run(
                [passwd, "-b", str(path), user, password],
                capture_output=True, text=True, timeout=30, check=False,
            )
            if done.returncode != 0:
                raise BrokerError(f"mosquitto_passwd failed for user {user!r}: "
                                  f"{(done.stderr or done.stdout).strip()}")

    def _write_files(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        password_file = self.folder / "passwords"
        acl_file = self.folder / "acl"
        self._write_password_file(password_file)
        acl_file.write_text(render_acl(list(self._users), self._acl))
        self.config_path.write_text(render_config(
            self._listeners,
            log_file=self.log_path,
            password_file=password_file,
            acl_file=acl_file,
            tls=self._material(),
            run_as=pwd.getpwuid(os.geteuid()).pw_name,
            max_keepalive=self._max_keepalive,
        ))
        if self._tls_max_version:
            self.openssl_config_path.write_text(render_openssl_config(self._tls_max_version))

    # --- process -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def start(self, timeout: float = 10.0) -> Self:
        """Launch mosquitto and return once every listener accepts a TCP connection."""
        if self.running:
            raise BrokerError(f"broker in {self.folder} is already running (pid {self.pid})")
        if not self._started_once:
            self.log_path.unlink(missing_ok=True)
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            self._write_files()
            self._launch()
            try:
                self._wait_ready(timeout)
            except BrokerError:
                self._reap(signal.SIGKILL, timeout=5.0)
                in_use = "Address already in use" in self._output_tail()
                # Another process took a port between picking and binding it: pick again,
                # but only while no client can have been told these ports yet.
                if in_use and not self._started_once and attempt < _BIND_ATTEMPTS:
                    self._listeners = self._pick_listeners()
                    continue
                raise
            break
        self._started_once = True
        return self

    def _launch(self) -> None:
        env = dict(os.environ)
        if self._tls_max_version:
            env["OPENSSL_CONF"] = str(self.openssl_config_path)
        self._log_at_launch = self.log_mark()
        self._console = self.console_path.open("ab")
        self._console_at_launch = self._console.tell()
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C meant for the harness must not kill it first
        )
        atexit.register(self._proc.kill)

    def _output_tail(self, lines: int = 30) -> str:
        """What this launch printed (stderr is unbuffered; the log file is flushed)."""
        with self.console_path.open("rb") as console:
            console.seek(self._console_at_launch)
            text = console.read().decode(errors="replace")
        text = text.strip() or self.log_since(self._log_at_launch).strip()
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def _wait_ready(self, timeout: float) -> None:
        """Until mosquitto has said it runs and every listener accepts a connection.

        Only after "running" have all listeners been bound by mosquitto itself: a port
        taken by another process must not pass for one of ours.
        """
        deadline = time.monotonic() + timeout
        self._wait_until(self._announced_running, "announce that it runs", deadline)
        for listener in self._listeners:
            self._wait_until(partial(self._accepts, listener),
                             f"open {listener.name} ({listener.url})", deadline)

    def _wait_until(self, done: Callable[[], bool], what: str, deadline: float) -> None:
        while not done():
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"mosquitto exited with status {self._proc.returncode} while starting "
                    f"(config {self.config_path}); its output:\n{self._output_tail()}"
                )
            if time.monotonic() > deadline:
                raise BrokerError(f"mosquitto did not {what} in time; its output:\n"
                                  f"{self._output_tail()}")
            time.sleep(0.02)  # nothing to block on while the process binds its sockets

    def _announced_running(self) -> bool:
        return _RUNNING.search(self.log_since(self._log_at_launch)) is not None

    def _accepts(self, listener: Listener) -> bool:
        try:
            raw = socket.create_connection((listener.local_address, listener.port), timeout=0.5)
        except OSError:
            return False
        with raw:
            if listener.tls:
                self._probe_tls(raw, listener)
        return True

    def _probe_tls(self, raw: socket.socket, listener: Listener) -> None:
        """Handshake and close cleanly, so the log holds no TLS errors of our making."""
        context = ssl.create_default_context(cafile=str(self._material().ca_pem))
        context.load_cert_chain(str(self._material().client_pem))
        try:
            tls = context.wrap_socket(raw, server_hostname=self.host)
        except ssl.SSLError as exc:
            raise BrokerError(f"TLS listener {listener.name} ({listener.url}) failed a "
                              f"handshake with a valid client: {exc}") from exc
        with tls, contextlib.suppress(OSError):  # the TLS socket took over raw's descriptor
            tls.unwrap()

    def _reap(self, sig: signal.Signals, timeout: float) -> None:
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
            atexit.unregister(proc.kill)
        if self._console is not None:
            self._console.close()
            self._console = None

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful stop: SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        self._reap(signal.SIGTERM, timeout)

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL, as a crash or power loss of the broker host looks to its clients."""
        self._reap(signal.SIGKILL, timeout)

    def restart(self, timeout: float = 10.0) -> Self:
        """Stop if running, start again on the same ports."""
        self.stop()
        return self.start(timeout)

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit status once the process ends, or None if it still runs after ``timeout``."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- listeners ---------------------------------------------------------------------

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return self._listeners

    def listener(self, name: str) -> Listener:
        for listener in self._listeners:
            if listener.name == name:
                return listener
        raise KeyError(f"no listener {name!r}; have {[lst.name for lst in self._listeners]}")

    @property
    def ports(self) -> dict[str, int]:
        return {listener.name: listener.port for listener in self._listeners}

    @property
    def plain_port(self) -> int:
        return self.listener(PLAIN).port

    @property
    def auth_port(self) -> int:
        return self.listener(AUTH).port

    @property
    def tls_port(self) -> int:
        return self.listener(TLS).port

    @property
    def tls_auth_port(self) -> int:
        return self.listener(TLS_AUTH).port

    @property
    def tls_refusing_port(self) -> int:
        return self.listener(TLS_REFUSING).port

    @property
    def plain6_port(self) -> int | None:
        """The ::1 listener's port, None when the broker was made without ``ipv6``."""
        return self.listener(PLAIN6).port if self._ipv6 else None

    @property
    def users(self) -> Mapping[str, str]:
        """User name → password, as accepted on the ``auth`` and ``tls_auth`` listeners."""
        return self._users

    # --- log -----------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_mark(self) -> int:
        """A position in the log; ``log_since(mark)`` returns what was logged after it."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, mark: int) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace")

    # --- faults --------------------------------------------------------------------------

    def kick(self, client_id: str, timeout: float = 5.0) -> bool:
        """Make mosquitto drop the client ``client_id`` by taking its session over.

        A second client connects with the same id (clean session off, so the old client's
        subscriptions and queued messages stay for its return; no automatic acks, so no
        in-flight message is consumed) and disconnects at once. Returns whether the broker
        logged closing an existing connection, i.e. whether someone was connected.
        """
        mark = self.log_mark()
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                       reason: ReasonCode, properties: object) -> None:
            if reason.is_failure:
                refused.append(str(reason))
            connected.set()

        kicker = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        kicker.manual_ack_set(True)
        kicker.on_connect = on_connect
        kicker.connect_timeout = timeout
        try:
            kicker.connect(self.listener(PLAIN).local_address, self.plain_port, keepalive=60)
        except OSError as exc:
            raise BrokerError(f"kick({client_id!r}): cannot reach {self.host}:{self.plain_port}: "
                              f"{exc}") from exc
        kicker.loop_start()
        try:
            if not connected.wait(timeout):
                raise BrokerError(f"kick({client_id!r}): no CONNACK within {timeout}s")
            if refused:
                raise BrokerError(f"kick({client_id!r}): CONNECT refused: {refused[0]}")
        finally:
            kicker.disconnect()
            kicker.loop_stop()
        return f"Client {client_id} already connected, closing old connection" in \
            self.log_since(mark)

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"Broker({self.folder}, {state}, ports={self.ports})"


__all__ = [
    "AUTH",
    "PLAIN",
    "PLAIN6",
    "TLS",
    "TLS_AUTH",
    "TLS_REFUSING",
    "Broker",
    "BrokerError",
    "find_program",
    "ipv6_loopback_available",
]
