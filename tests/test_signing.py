"""audit --sign-key signs each manifest (Ed25519, manifest.sig); verify --key detects a rewritten newest run."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from m365audit.cli import cli
from m365audit.evidence import (
    MANIFEST,
    SIGNATURE,
    RunFolder,
    load_public_keys,
    load_signer,
    new_run_id,
    sha256_file,
    verify_chain_with_ledger,
    verify_run,
)
from m365audit.evidence.files import SEAL, seal_line
from tests.conftest import FIXED_NOW, TENANTS
from tests.test_run_safety import TENANT

EXAMPLE = TENANTS / "gemeente-voorbeeld"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    result = CliRunner().invoke(cli, ["keygen", str(folder / "audit.key")])
    assert result.exit_code == 0, result.output
    return folder / "audit.key"


def audit(reports: Path, key: Path | None, *extra: str) -> Path:
    args = ["audit", "--replay", str(EXAMPLE), "--reports", str(reports), "-q", *extra]
    result = CliRunner().invoke(cli, args + (["--sign-key", str(key)] if key else []))
    assert result.exit_code in (0, 1, 3), result.output
    [tenant] = [p for p in reports.iterdir() if not p.name.startswith(".")]
    return sorted(p for p in tenant.iterdir() if p.is_dir())[-1]


def verify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", *args])
    return result.exit_code, result.output


def rewrite(run: Path, name: str, data: bytes) -> None:
    """What root can do to the newest run: change a file, then the manifest's hash of it and the seal."""
    (run / name).write_bytes(data)
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["files"][name] = hashlib.sha256(data).hexdigest()
    (run / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    (run / SEAL).write_text(seal_line(sha256_file(run / MANIFEST)))


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(keys: Path) -> None:
    assert keys.stat().st_mode & 0o777 == 0o600
    assert b"BEGIN PRIVATE KEY" in keys.read_bytes() and b"BEGIN PUBLIC KEY" in Path(f"{keys}.pub").read_bytes()
    result = CliRunner().invoke(cli, ["keygen", str(keys)])
    assert result.exit_code == 2 and "never overwritten" in result.output


def test_a_signed_run_verifies_with_its_key_and_a_rewritten_newest_run_is_detected(keys: Path,
                                                                                     tmp_path: Path) -> None:
    pub = f"{keys}.pub"
    audit(tmp_path / "reports", keys)
    run = audit(tmp_path / "reports", keys)
    assert (run / SIGNATURE).is_file() and SIGNATURE not in json.loads((run / MANIFEST).read_text())["files"]
    assert verify(str(run), "--key", pub)[0] == 0
    assert verify("--chain", str(run.parent), "--key", pub)[0] == 0
    code, out = verify(str(run))
    assert code == 0 and "not checked (give --key" in out, "without a key: intact, with a note"

    findings = json.loads((run / "findings.json").read_text())
    findings["verdict"] = "pass"
    rewrite(run, "findings.json", json.dumps(findings).encode())
    code, out = verify("--chain", str(run.parent), "--key", pub)
    assert code == 1 and "manifest.sig: signs another manifest.json" in out
    assert verify("--chain", str(run.parent))[0] == 1, "a signature left behind no longer fits, key or not"

    (run / SIGNATURE).unlink()  # removing the signature does not help
    assert verify("--chain", str(run.parent))[0] == 0, "the hash chain alone cannot see this (threat model)"
    code, out = verify("--chain", str(run.parent), "--key", pub)
    assert code == 1 and "not signed: manifest.sig is missing" in out

    other = tmp_path / "attacker.key"
    assert CliRunner().invoke(cli, ["keygen", str(other)]).exit_code == 0
    manifest = (run / MANIFEST).read_bytes()
    (run / SIGNATURE).write_bytes(load_signer(other).signature_file(manifest))  # nor signing with another key
    code, out = verify(str(run), "--key", pub)
    assert code == 1 and "which is not a key given with --key" in out


def test_a_forged_signature_under_the_right_fingerprint_is_detected(keys: Path, tmp_path: Path) -> None:
    run = audit(tmp_path / "reports", keys)
    doc = json.loads((run / SIGNATURE).read_text())
    forged = Ed25519PrivateKey.generate().sign((run / MANIFEST).read_bytes())
    doc["signature"] = base64.b64encode(forged).decode()
    (run / SIGNATURE).write_text(json.dumps(doc))
    code, out = verify(str(run), "--key", f"{keys}.pub")
    assert code == 1 and "the signature does not match manifest.json" in out
    (run / SIGNATURE).write_text("{not json")
    code, out = verify(str(run))
    assert code == 1 and "manifest.sig: unreadable" in out, "even without a key a broken signature file is reported"


def signed_history(reports: Path, key: Path, signed: list[bool]) -> Path:
    signer = load_signer(key)
    for n, sign in enumerate(signed):
        when = FIXED_NOW.replace(day=1 + n)
        folder = RunFolder(reports, new_run_id(when), when)
        folder.write("findings.json", json.dumps({"night": n}).encode())
        folder.finalise(TENANT, {"tenant_id": TENANT}, signer=signer if sign else None)
    return reports / TENANT


def test_the_chain_needs_signatures_from_the_first_signed_run_on_and_on_the_newest(keys: Path,
                                                                                   tmp_path: Path) -> None:
    public = load_public_keys([Path(f"{keys}.pub")])
    adopted = signed_history(tmp_path / "a", keys, [False, False, True, True])
    assert all(r.ok for r in verify_chain_with_ledger(adopted, public)), "runs before signing began are anchored"
    gap = signed_history(tmp_path / "b", keys, [False, True, False, True])
    assert [r.ok for r in verify_chain_with_ledger(gap, public)] == [True, True, False, True]
    stripped = signed_history(tmp_path / "c", keys, [False, False, False])
    assert [r.ok for r in verify_chain_with_ledger(stripped, public)] == [True, True, False]
    assert all(r.ok for r in verify_chain_with_ledger(stripped)), "without --key no signature is required"


def pem(key: object) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                             serialization.NoEncryption())


BAD_KEYS = {
    "encrypted": (Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"wachtwoord")), "encrypted with a password"),
    "rsa": (pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "RSA key, not Ed25519"),
    "ec": (pem(ec.generate_private_key(ec.SECP256R1())), "key, not Ed25519"),
    "public": (Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), "holds a public key"),
    "garbage": (b"geen sleutel\n", "is not a PEM private key"),
}


@pytest.mark.parametrize("kind", list(BAD_KEYS))
def test_a_wrong_sign_key_is_one_line_exit_2_before_any_evidence(kind: str, tmp_path: Path) -> None:
    data, message = BAD_KEYS[kind]
    (tmp_path / "k.pem").write_bytes(data)
    result = CliRunner().invoke(cli, ["audit", "--replay", str(EXAMPLE), "--reports", str(tmp_path / "reports"),
                                      "--sign-key", str(tmp_path / "k.pem")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1
    assert not (tmp_path / "reports").exists()


def test_a_wrong_verify_key_is_exit_2(keys: Path, tmp_path: Path) -> None:
    run = audit(tmp_path / "reports", keys)
    code, out = verify(str(run), "--key", str(keys))
    assert code == 2 and "holds a private key" in out
    code, out = verify(str(run), "--key", str(tmp_path / "missing.pub"))
    assert code == 2 and "cannot be read" in out


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_signature_checks_with_openssl_as_docs_say(keys: Path, tmp_path: Path) -> None:
    run = audit(tmp_path / "reports", keys)
    doc = json.loads((run / SIGNATURE).read_text())
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(doc["signature"]))
    checked = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", f"{keys}.pub", "-rawin",
                              "-in", str(run / MANIFEST), "-sigfile", str(tmp_path / "sig.bin")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", f"{keys}.pub", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    assert doc["public_key"] == "sha256:" + hashlib.sha256(der[-32:]).hexdigest()
    assert verify_run(run).ok
