"""Checks made once before a run: can the module's port be opened, is the broker's port free.

A wrong port or a busy broker port would otherwise show as the same long error in every
test, after each has waited its timeout. Each check returns one line that says what is
wrong and what to do, or None. A device node is only looked at (exists, may be opened),
never opened: opening and closing a tty can toggle DTR, which on some benches presses the
module's power key.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path
from urllib.parse import urlsplit

from serial.tools import list_ports

#: Seconds a TCP port (socket://, rfc2217://) may take to accept the probe connection.
CONNECT_TIMEOUT_S = 3.0
_LIST_HINT = "`python -m serial.tools.list_ports -v` lists the serial ports"
_DIALOUT_HINT = ("a /dev/tty* port needs the user in group dialout "
                 "(`sudo usermod -aG dialout $USER`, then log in again)")


def _ports_here() -> str:
    found = sorted(p.device for p in list_ports.comports())
    return "serial ports here: " + (", ".join(found) if found else "none")


def port_problem(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why the module's port `url` cannot be opened, in one line with the fix; or None."""
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme in ("socket", "rfc2217"):
        return _tcp_problem(url, timeout)
    if scheme:
        return None  # loop://, spy://, hwgrep://…: pyserial's own; nothing to look at
    return _device_problem(url)


def _device_problem(path: str) -> str | None:
    where = f"cannot open the module's port {path}"
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        return (f"{where}: no such device (unplugged, switched off, or another name); "
                f"{_ports_here()}; {_LIST_HINT}; check [dut] port or --l506-port")
    except OSError as exc:
        return f"{where}: {exc.strerror}; {_LIST_HINT}"
    if not stat.S_ISCHR(mode):
        return f"{where}: not a serial device; {_ports_here()}; {_LIST_HINT}"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"{where}: permission denied; {_DIALOUT_HINT}; {_LIST_HINT}"
    return None


def _tcp_problem(url: str, timeout: float) -> str | None:
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or port is None:
        return f"cannot open the module's port {url}: write it as {parts.scheme}://HOST:PORT"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        why = f"no answer within {timeout:g} s"
    except OSError as exc:
        why = exc.strerror or str(exc)
    return (f"cannot open the module's port {url}: {why}; is the server (ser2net, "
            f"`hil sim --tcp`) running there? check [dut] port or --l506-port; for a local "
            f"port, {_LIST_HINT} and {_DIALOUT_HINT}")


def broker_port_problem(bind: str, port: int, key: str = "port") -> str | None:
    """Why the broker cannot listen on `bind`:`port` (a fixed port taken), or None.

    `key` names the rig's setting ([broker] port or tls_port) in the message.
    """
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as mosquitto binds
        try:
            probe.bind((bind, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"the test broker cannot listen on {bind}:{port}: the port is in use "
                        f"(a system mosquitto? `sudo systemctl stop mosquitto`), or set "
                        f"[broker] {key} = 0 (any free port) or another port in the rig")
            if exc.errno == errno.EACCES:
                return (f"the test broker cannot listen on {bind}:{port}: ports below 1024 "
                        f"need root; set [broker] {key} to 1024 or above, or 0")
            return f"the test broker cannot listen on {bind}:{port}: {exc.strerror}"
    return None
