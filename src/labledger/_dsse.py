"""Ed25519 keys and DSSE envelopes: signed audit heads and signed attestations.

An envelope is the Dead Simple Signing Envelope (DSSE v1, the one in-toto uses)::

    {"payloadType": "...", "payload": base64(body),
     "signatures": [{"keyid": sha256 of the raw public key, "sig": base64(signature)}]}

and the signature is over ``PAE(payloadType, body) = "DSSEv1" SP len(type) SP type SP
len(body) SP body`` (lengths in ASCII decimal). Keys are PEM files: the private key as
PKCS#8 (mode 0600), the public key as SubjectPublicKeyInfo beside it (``KEY.pub``). The
``cryptography`` package does the signing (``labledger[trust]``); it is imported on first use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ._exceptions import MissingDependencyError, UsageError

__all__ = [
    "HEAD_TYPE",
    "generate_key",
    "keyid",
    "load_private_key",
    "load_public_key",
    "open_envelope",
    "pae",
    "sign_envelope",
]

HEAD_TYPE = "application/vnd.labledger.audit-head+json"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - installed with labledger[trust]
        raise MissingDependencyError("cryptography", "trust") from exc
    return ed25519


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def keyid(public_key: Any) -> str:
    """sha256 (hex) of the raw 32-byte Ed25519 public key: names the key in envelopes."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def generate_key(path: str | os.PathLike[str]) -> tuple[Path, Path, str]:
    """Write a new Ed25519 key pair: ``path`` (private, 0600) and ``path.pub``; return
    (private path, public path, keyid). An existing file is never overwritten."""
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    priv_path = Path(path)
    pub_path = priv_path.with_name(priv_path.name + ".pub")
    for p in (priv_path, pub_path):
        if p.exists():
            raise UsageError(f"{p} exists already: not overwriting a key")
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    priv_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    pub_path.write_bytes(public)
    return priv_path, pub_path, keyid(key.public_key())


def load_private_key(path: str | os.PathLike[str]) -> Any:
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise UsageError(f"{path}: not an Ed25519 key (make one with `labledger audit keygen`)")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Any:
    """A public key from a ``.pub`` PEM file (or the public half of a private key file)."""
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    data = Path(path).read_bytes()
    try:
        key: Any = serialization.load_pem_public_key(data)
    except ValueError:
        key = load_private_key(path).public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise UsageError(f"{path}: not an Ed25519 public key")
    return key


def sign_envelope(payload_type: str, payload: Any, key: Any) -> dict[str, Any]:
    """A DSSE envelope over ``payload`` (JSON: sorted keys, no spaces) signed with ``key``."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    sig = key.sign(pae(payload_type, body))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(body).decode(),
        "signatures": [{"keyid": keyid(key.public_key()), "sig": base64.b64encode(sig).decode()}],
    }


def open_envelope(envelope: Any, public_key: Any, payload_type: str | None = None) -> Any:
    """The payload of ``envelope`` once a signature by ``public_key`` checks out; UsageError
    naming what is wrong otherwise (not an envelope, another type, no valid signature)."""
    from cryptography.exceptions import InvalidSignature

    if not isinstance(envelope, dict) or not {"payloadType", "payload", "signatures"} <= set(
        envelope
    ):
        raise UsageError("not a DSSE envelope (payloadType, payload, signatures)")
    ptype = str(envelope["payloadType"])
    if payload_type is not None and ptype != payload_type:
        raise UsageError(f"the envelope holds {ptype!r}, not {payload_type!r}")
    try:
        body = base64.b64decode(str(envelope["payload"]), validate=True)
    except ValueError as exc:
        raise UsageError("the envelope's payload is not base64") from exc
    want = keyid(public_key)
    for s in envelope["signatures"] or []:
        if not isinstance(s, dict) or s.get("keyid") not in (None, "", want):
            continue
        try:
            public_key.verify(base64.b64decode(str(s.get("sig", ""))), pae(ptype, body))
        except (InvalidSignature, ValueError):
            continue
        try:
            return json.loads(body)
        except ValueError as exc:
            raise UsageError("the signed payload is not JSON") from exc
    raise UsageError(
        f"no valid signature by key {want[:16]}… on this envelope: it was changed after it "
        "was signed, or signed with another key"
    )
