"""Throwaway PKI for one broker: a CA, a server certificate and a client certificate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsMaterial:
    """Paths of the PEM files a broker and its clients need."""

    ca_pem: Path
    server_pem: Path
    server_key: Path
    client_pem: Path

    @classmethod
    def in_folder(cls, folder: Path) -> TlsMaterial:
        """The files make_tls_material writes into `folder` (made once, used by many)."""
        return cls(ca_pem=folder / "ca.pem", server_pem=folder / "server.pem",
                   server_key=folder / "server.key", client_pem=folder / "client.pem")


def make_tls_material(folder: Path) -> TlsMaterial:
    """Write a fresh CA, a server cert and a client cert (with key) into ``folder``.

    RSA, not trustme's default ECDSA: the TLS stacks of cellular modules of the L506's
    generation are not known to accept ECDSA certificates, and RSA works everywhere.
    """
    import trustme  # here: a process that is handed its material never loads it

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    server = ca.issue_cert(*SERVER_NAMES, key_type=trustme.KeyType.RSA)
    client = ca.issue_cert("hil-client", key_type=trustme.KeyType.RSA)

    material = TlsMaterial.in_folder(folder)
    ca.cert_pem.write_to_path(str(material.ca_pem))
    material.server_pem.write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(material.server_key))
    client.private_key_and_cert_chain_pem.write_to_path(str(material.client_pem))
    for key_file in (material.server_key, material.client_pem):
        key_file.chmod(0o600)
    return material
