"""Proof Key for Code Exchange (RFC 7636), S256: onboarding keeps a fresh verifier beside its
`state` and sends only its challenge to the automaker's consent page; the code the automaker
returns is exchanged with the verifier, so a code intercepted on its way back is useless."""

from __future__ import annotations

import base64
import hashlib
import secrets

METHOD = "S256"
#: 48 random bytes: 64 base64url characters, within RFC 7636's 43..128 unreserved ones.
VERIFIER_BYTES = 48


def new_verifier() -> str:
    return secrets.token_urlsafe(VERIFIER_BYTES)


def challenge(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
