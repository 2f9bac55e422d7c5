"""mosquitto.conf and ACL rendering: one listener per way an L506 can meet a broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hil.broker.tls import TlsMaterial

# (access, topic filter) as in a mosquitto ACL line: access is read, write, readwrite or deny.
AclRule = tuple[str, str]
ACL_ACCESS = frozenset({"read", "write", "readwrite", "deny"})


@dataclass(frozen=True)
class Listener:
    """One listening socket and the rules a client meets there.

    ``auth``: anonymous clients are refused (CONNACK "not authorised"); users come from the
    password file and are held to the ACL. ``require_certificate``: the TLS handshake fails
    for a client without a certificate signed by the broker's CA.
    """

    name: str
    port: int
    address: str = "127.0.0.1"
    tls: bool = False
    auth: bool = False
    require_certificate: bool = False

    @property
    def local_address(self) -> str:
        """The address a client on this machine dials: loopback for a wildcard bind."""
        return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.address, self.address)

    @property
    def url(self) -> str:
        """``mqtt://`` or ``mqtts://`` address, with IPv6 literals bracketed."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def render_acl(users: Sequence[str], acl: Mapping[str, Sequence[AclRule]]) -> str:
    """ACL file text: a user named in ``acl`` gets exactly its rules, any other user all topics.

    A user absent from an ACL file may do nothing at all, so every user gets a block.
    """
    unknown = set(acl) - set(users)
    if unknown:
        raise ValueError(f"ACL names users without a password: {sorted(unknown)}")
    lines: list[str] = []
    for user in users:
        rules = acl.get(user, (("readwrite", "#"),))
        lines.append(f"user {user}")
        for access, topic in rules:
            if access not in ACL_ACCESS:
                raise ValueError(f"ACL access {access!r} for {user!r} is not one of {ACL_ACCESS}")
            lines.append(f"topic {access} {topic}")
        lines.append("")
    return "\n".join(lines)


def render_config(
    listeners: Sequence[Listener],
    *,
    log_file: Path,
    password_file: Path,
    acl_file: Path,
    tls: TlsMaterial,
    run_as: str,
    max_keepalive: int,
) -> str:
    """The whole mosquitto.conf for one broker instance."""
    lines = [
        "# Rendered by hil.broker for one test broker; rewritten on every start.",
        "per_listener_settings true",
        "persistence false",
        f"user {run_as}",
        f"max_keepalive {max_keepalive}",
        "connection_messages true",
        "log_timestamp true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        f"log_dest file {log_file}",
        "log_dest stdout",
        "log_type all",
        "",
    ]
    for listener in listeners:
        lines += [
            f"# {listener.name}",
            f"listener {listener.port} {listener.address}",
            "allow_zero_length_clientid true",
        ]
        if listener.auth:
            lines += [
                "allow_anonymous false",
                f"password_file {password_file}",
                f"acl_file {acl_file}",
            ]
        else:
            lines.append("allow_anonymous true")
        if listener.tls:
            lines += [f"certfile {tls.server_pem}", f"keyfile {tls.server_key}"]
        if listener.require_certificate:
            lines += [f"cafile {tls.ca_pem}", "require_certificate true"]
        lines.append("")
    return "\n".join(lines)


def render_openssl_config(max_protocol: str) -> str:
    """OpenSSL configuration (for OPENSSL_CONF) capping the broker's TLS version.

    mosquitto 2.0's ``tls_version`` sets only the lowest version. Under TLS 1.3 a client
    without a certificate finishes its side of the handshake and learns of the refusal
    only on its first read; capped at TLS 1.2 the handshake itself fails, as an L506 (a
    TLS 1.2 client) sees it.
    """
    return "\n".join([
        "openssl_conf = openssl_init",
        "[openssl_init]",
        "ssl_conf = ssl_section",
        "[ssl_section]",
        "system_default = system_default_section",
        "[system_default_section]",
        f"MaxProtocol = {max_protocol}",
        "",
    ])
