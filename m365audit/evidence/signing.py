"""Ed25519 signatures over manifest.json (manifest.sig): audit --sign-key writes them, verify --key checks them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from m365audit.errors import UsageError
from m365audit.evidence.files import MANIFEST

SIGNATURE = "manifest.sig"
"""Beside manifest.json and manifest.sha256; like the seal it is outside the manifest, which it signs."""
FORMAT = "m365audit-manifest-signature"
PublicKeys = Mapping[str, Ed25519PublicKey]
"""Public keys by fingerprint."""


def fingerprint(public: Ed25519PublicKey) -> str:
    """sha256: and the hex SHA-256 of the 32 raw public key bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Signer:
    """The private key of --sign-key, loaded once when the command starts (never printed)."""

    key: Ed25519PrivateKey = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key.public_key())

    def signature_file(self, manifest: bytes) -> bytes:
        """manifest.sig: the Ed25519 signature over the exact bytes of manifest.json, and whose key made it."""
        doc = {"format": FORMAT, "version": 1, "algorithm": "Ed25519", "signed_file": MANIFEST,
               "manifest_sha256": hashlib.sha256(manifest).hexdigest(), "public_key": self.fingerprint,
               "signature": base64.b64encode(self.key.sign(manifest)).decode()}
        return json.dumps(doc, indent=2).encode() + b"\n"


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot be read ({exc.strerror})",
                         hint="give the PEM file `m365audit keygen` wrote") from exc


def load_signer(path: Path) -> Signer:
    """An unencrypted PKCS#8 PEM Ed25519 private key; any other file is a one-line usage error (exit 2)."""
    data = _read(path, "--sign-key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # cryptography: "Password was not given but private key is encrypted"
        raise UsageError(f"--sign-key {path}: the private key is encrypted with a password",
                         hint="a nightly run cannot type a password: keep an unencrypted key readable only by the "
                              "audit user (chmod 600), e.g. from `m365audit keygen`") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        public = b"PUBLIC KEY-----" in data
        raise UsageError(f"--sign-key {path}: " + ("holds a public key; signing needs the private key" if public
                                                   else "is not a PEM private key (PKCS#8)"),
                         hint="give the private key file `m365audit keygen` wrote (not KEY.pub)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"--sign-key {path}: is a {_kind(key)} key, not Ed25519",
                         hint="make an Ed25519 key with `m365audit keygen KEY` or "
                              "`openssl genpkey -algorithm ed25519 -out KEY`")
    return Signer(key)


def load_public_keys(paths: Sequence[Path]) -> dict[str, Ed25519PublicKey]:
    """SubjectPublicKeyInfo PEM Ed25519 public keys by fingerprint; anything else is a usage error (exit 2)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        data = _read(path, "--key")
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            private = b"PRIVATE KEY-----" in data
            raise UsageError(f"--key {path}: " + ("holds a private key; verify needs only the public key" if private
                                                  else "is not a PEM public key (SubjectPublicKeyInfo)"),
                             hint="give the KEY.pub that `m365audit keygen KEY` wrote; keep the private key on the "
                                  "audit host only") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise UsageError(f"--key {path}: is a {_kind(key)} key, not Ed25519",
                             hint="give the KEY.pub that `m365audit keygen KEY` wrote")
        keys[fingerprint(key)] = key
    return keys


def _kind(key: Any) -> str:
    return type(key).__name__.lstrip("_").replace("PrivateKey", "").replace("PublicKey", "") or "other"


def generate_key_pair(out: Path) -> str:
    """OUT (private, PKCS#8 PEM, mode 600) and OUT.pub (public, SubjectPublicKeyInfo PEM); never over a file."""
    public_path = out.with_name(out.name + ".pub")
    for path in (out, public_path):
        if path.exists():
            raise UsageError(f"{path} exists; keys are never overwritten", hint="give a new file name")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    with public_path.open("xb") as f:
        f.write(public)
    return fingerprint(key.public_key())


def signature_check(run: Path, keys: PublicKeys | None, required: bool) -> tuple[list[str], list[str]]:
    """(problems, notes) of a run's manifest.sig: present and well formed, for this manifest, by a given key."""
    sig_path, manifest_path = run / SIGNATURE, run / MANIFEST
    if not sig_path.is_file():
        return ([f"not signed: {SIGNATURE} is missing (runs from the first signed one on, and the newest run, "
                 "must be signed)"] if required else []), []
    try:
        doc = json.loads(sig_path.read_text(encoding="utf-8"))
        manifest = manifest_path.read_bytes()
        signature = base64.b64decode(str(doc["signature"]), validate=True)
        if doc.get("format") != FORMAT or doc.get("algorithm") != "Ed25519" or len(signature) != 64:
            raise ValueError("not an m365audit Ed25519 signature")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"{SIGNATURE}: unreadable ({type(exc).__name__})"], []
    if doc.get("manifest_sha256") != hashlib.sha256(manifest).hexdigest():
        return [f"{SIGNATURE}: signs another {MANIFEST} than this one"], []
    signer = str(doc.get("public_key"))
    if keys is None:
        return [], [f"signed by key {signer[:23]}…; not checked (give --key KEY.pub)"]
    key = keys.get(signer)
    if key is None:
        return [f"{SIGNATURE}: signed by key {signer[:23]}…, which is not a key given with --key"], []
    try:
        key.verify(signature, manifest)
    except InvalidSignature:
        return [f"{SIGNATURE}: the signature does not match {MANIFEST} (the manifest or its signature was rewritten)"
                ], []
    return [], []
