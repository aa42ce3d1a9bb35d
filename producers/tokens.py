"""Bearer tokens of the commune one-stop systems, stored only as hashes.

The tokens file maps a commune code to the hash of that commune's token, as
YAML or JSON (YAML is a superset of JSON, so one loader reads both)::

    # commune_code: hash
    "42001": "sha256:9f2c1e…:4b7d…"   # salted: sha256(salt || token), what `onestop gateway hash-token` prints
    "42004": "5e88489…"               # bare 64-hex sha256(token), e.g. from `printf %s "$TOKEN" | sha256sum`

Tokens are random high-entropy strings (``secrets.token_urlsafe(32)``), so a
fast hash is enough: nobody can brute-force 256 random bits. Verification
computes the hash of the presented token against *every* entry and compares
with ``hmac.compare_digest``, so the time taken does not depend on which entry
(if any) matched or on how many leading bytes agreed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import yaml

from onestop.events import COMMUNE_CODE

SCHEME = "sha256"
_SALTED = re.compile(r"^sha256:(?P<salt>[0-9a-f]{16,128}):(?P<digest>[0-9a-f]{64})$")
_BARE = re.compile(r"^(?P<digest>[0-9a-f]{64})$")
_COMMUNE = re.compile(COMMUNE_CODE, re.ASCII)


class TokenFileError(ValueError):
    """The tokens file is missing, unreadable or has an invalid entry."""


def new_token() -> str:
    """A fresh random bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str, *, salt: bytes | None = None) -> str:
    """The salted hash to store for ``token``: ``sha256:<salt-hex>:<digest-hex>``."""
    if not token:
        raise ValueError("token must not be empty")
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.sha256(salt + token.encode("utf-8")).hexdigest()
    return f"{SCHEME}:{salt.hex()}:{digest}"


@dataclass(frozen=True)
class _Entry:
    commune_code: str
    salt: bytes
    digest: bytes

    def matches(self, token: bytes) -> bool:
        return hmac.compare_digest(hashlib.sha256(self.salt + token).digest(), self.digest)


def _parse_hash(commune_code: str, stored: object) -> _Entry:
    text = stored.strip().lower() if isinstance(stored, str) else ""
    match = _SALTED.match(text) or _BARE.match(text)
    if not match:
        raise TokenFileError(f"commune {commune_code}: expected 'sha256:<salt-hex>:<64 hex>' or 64 hex, "
                             f"got {stored!r}")
    salt = bytes.fromhex(match.groupdict().get("salt") or "")
    return _Entry(commune_code, salt, bytes.fromhex(match.group("digest")))


class TokenStore:
    """Maps a presented bearer token to the commune it was issued to."""

    def __init__(self, hashes: Mapping[str, str]) -> None:
        entries = []
        for code, stored in hashes.items():
            code = str(code)
            if not _COMMUNE.match(code):
                raise TokenFileError(f"{code!r} is not a 5-digit commune code (quote it in YAML: \"{code}\")")
            entries.append(_parse_hash(code, stored))
        self._entries = tuple(entries)

    @classmethod
    def from_file(cls, path: Path) -> "TokenStore":
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise TokenFileError(f"cannot read tokens file {path}: {exc}") from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise TokenFileError(f"{path}: expected a mapping commune_code -> hash")
        return cls(data)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def communes(self) -> frozenset[str]:
        return frozenset(e.commune_code for e in self._entries)

    def authenticate(self, token: str | None) -> str | None:
        """The commune code ``token`` belongs to, or None.

        Every entry is checked (no early exit). A token that matches two
        communes is a configuration mistake and authenticates nobody.
        """
        if not token:
            return None
        raw = token.encode("utf-8", "surrogateescape")
        matched = [e.commune_code for e in self._entries if e.matches(raw)]
        return matched[0] if len(set(matched)) == 1 else None
