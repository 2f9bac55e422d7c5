"""Secrets out of reports: mask them where text is shown, and check that none got through.

The broker's passwords and a rig's [secrets] must never show anywhere under reports/.
Text is masked where the harness writes it; `scan` is the last check over a finished run's
folder (every file, text or not), naming where a secret leaked without printing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

MASK = "****"
#: Shorter values would be found by chance everywhere; they are masked but not scanned for.
SCAN_MIN_LEN = 4
_IMEI = re.compile(r"\b(\d{8})(\d{6,9})\b")


def mask_imei(text: str) -> str:
    """Keep an IMEI's type allocation code (the model), hide the serial part."""
    return _IMEI.sub(lambda m: m.group(1) + "*" * len(m.group(2)), text)


def mask_text(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def mask_bytes(
    data: bytes, secrets: Iterable[str]
) -> tuple[bytes, list[tuple[int, int]]]:
    """Same-length masking, so offsets and sizes in raw logs stay true; also returns the
    masked spans (offset, length), so a reader knows which bytes are not the device's."""
    masked = bytearray(data)
    spans: list[tuple[int, int]] = []
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        raw = secret.encode("utf-8")
        at = masked.find(raw)
        while at >= 0:
            masked[at : at + len(raw)] = b"*" * len(raw)
            spans.append((at, len(raw)))
            at = masked.find(raw, at + len(raw))
    return bytes(masked), sorted(spans)


def scan(folder: Path, secrets: Iterable[str]) -> list[tuple[Path, int]]:
    """Files under `folder` holding a secret: (path, index of the secret in `secrets`)."""
    wanted = [(i, s.encode("utf-8")) for i, s in enumerate(secrets) if len(s) >= SCAN_MIN_LEN]
    found: list[tuple[Path, int]] = []
    if not wanted:
        return found
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        found += [(path, i) for i, raw in wanted if raw in data]
    return found
