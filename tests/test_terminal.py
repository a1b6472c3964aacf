"""Hostile tenant strings on a terminal: no escape sequence, control character or bidi override is ever printed."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from m365audit.cli import cli
from m365audit.cli.terminal import clean, install_log_handler, json_safe
from tests.conftest import ROOT, TENANTS

HOSTILE = ("\x1b[31mROOD\x1b[0m \x1b]8;;http://evil.example/\x1b\\klik\x1b]8;;\x1b\\ \x1b]52;c;ZXZpbA==\x07 "
           "\x9b2J \x9d0;titel\x9c \u202egnp.exe \x07\x08\x7f\x1bc\nCOMPLIANT: vals\r\u2028einde")
"""CSI colour, an OSC 8 link, an OSC 52 clipboard write, 8-bit CSI and OSC, a bidi override, BEL/BS/DEL, RIS and
line breaks that would forge a second verdict line."""
YAML_HOSTILE = (r"\e[31mROOD\e[0m \e]8;;http://evil.example/\e\\klik\e]8;;\e\\ \e]52;c;ZXZpbA==\a "
                r"\x9b2J \u202egnp \nvals")
UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def unsafe_in(text: str) -> list[str]:
    """Every character a terminal could act on, line breaks between output lines excepted."""
    return sorted({repr(c) for line in text.split("\n") for c in UNSAFE.findall(line)})


def test_clean_removes_every_sequence_and_keeps_the_words() -> None:
    out = clean(HOSTILE)
    assert unsafe_in(out) == [] and "\n" not in out
    assert "ROOD" in out and "klik" in out and "ZXZpbA" not in out and "evil.example" not in out
    assert "gnp.exe" in out and "COMPLIANT: vals" in out
    assert clean("a\nb", multiline=True) == "a\nb" and clean("a\tb") == "a\tb"
    assert clean("Gemeente Zoeterwoude — ‘t Veld ë") == "Gemeente Zoeterwoude — ‘t Veld ë"


def test_json_output_keeps_the_data_but_not_the_bytes() -> None:
    doc = {"name": HOSTILE}
    text = json_safe(json.dumps(doc, ensure_ascii=False))
    assert unsafe_in(text) == [] and json.loads(text) == doc


def test_log_lines_are_cleaned(capsys: pytest.CaptureFixture[str]) -> None:
    install_log_handler()
    install_log_handler()  # once, however often the group runs
    logging.getLogger("m365audit.collect").warning("source %s", HOSTILE)
    logging.getLogger("azure.identity").warning("get_token failed")  # the error itself says it, once
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ROOD" in err and unsafe_in(err) == [] and "get_token" not in err


# --------------------------------------------------------------------------- every command, a hostile tenant


def _set_name(tenant: Path, name: str) -> None:
    org = tenant / "exchanges" / "010-organization.json"
    doc = json.loads(org.read_text(encoding="utf-8"))
    doc["response"]["body"]["value"][0]["displayName"] = name
    org.write_text(json.dumps(doc), encoding="utf-8")
    meta = tenant / "tenant.yaml"
    meta.write_text(re.sub(r"(?m)^display_name:.*$", lambda _: "display_name: " + json.dumps(name),
                                meta.read_text()))


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two nights of a hostile tenant (the second with a hostile Copilot connector indexing) and a hostile pack."""
    base = tmp_path_factory.mktemp("hostile-cli")
    first, second = base / "night1", base / "night2"
    shutil.copytree(TENANTS / "hostile-names", first)
    _set_name(first, "Gemeente " + HOSTILE)
    shutil.copytree(first, second)
    conn = second / "exchanges" / "180-external-connections.json"
    doc = json.loads(conn.read_text(encoding="utf-8"))
    doc["response"]["body"]["value"][0].update(state="ready", name="Zaak " + HOSTILE)
    conn.write_text(json.dumps(doc), encoding="utf-8")
    pack = base / "pack"
    shutil.copytree(ROOT / "policies", pack)
    rules = pack / "rules" / "access-and-endpoints.yaml"
    text = rules.read_text(encoding="utf-8")
    text = text.replace("nl: Voorwaardelijke toegang blokkeert de Copilot-apps voor alle gebruikers",
                        f'nl: "Voorwaardelijke toegang {YAML_HOSTILE}"', 1)
    rules.write_text(text, encoding="utf-8")
    return first, second, pack


def _run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_no_command_prints_a_control_character(nights: tuple[Path, Path, Path], tmp_path: Path) -> None:
    first, second, pack = nights
    reports = tmp_path / "reports"
    outputs: dict[str, Result] = {}
    outputs["audit 1"] = _run(["audit", "--replay", str(first), "--reports", str(reports)])
    outputs["audit 2"] = _run(["audit", "--replay", str(second), "--reports", str(reports), "--lang", "en"])
    [tenant] = [p for p in reports.iterdir() if p.is_dir() and not p.name.startswith(".")]
    run = sorted(p for p in tenant.iterdir() if p.is_dir() and p.name[0].isdigit())[-1]
    commands = {
        "evaluate": ["evaluate", str(run)],
        "evaluate --json": ["evaluate", str(run), "--json"],
        "verify": ["verify", str(run)],
        "verify --chain": ["verify", "--chain", str(tenant)],
        "drift": ["drift", "--reports", str(reports)],
        "drift --json": ["drift", "--reports", str(reports), "--json"],
        "history": ["history", "--reports", str(reports)],
        "rules": ["rules", "--policies", str(pack)],
        "explain": ["explain", "ca-blocks-copilot-apps", "--policies", str(pack)],
        "explain unknown": ["explain", "x" + HOSTILE],
        "validate": ["validate", str(pack)],
        "permissions": ["permissions", "--policies", str(pack)],
        "record": ["record", "--from", str(run), str(tmp_path / "shared")],
        "prune": ["prune", "--keep-days", "1", "--reports", str(reports), "--dry-run"],
        "evaluate pack": ["evaluate", str(run), "--policies", str(pack)],
    }
    for name, args in commands.items():
        outputs[name] = _run(args)
    assert outputs["audit 2"].exit_code == 1, outputs["audit 2"].output
    assert "REGRESSION" in outputs["audit 2"].stdout and "Zaak" in outputs["drift"].stdout
    assert "ROOD" in outputs["history"].stdout and "ROOD" in outputs["rules"].stdout
    assert "ROOD" in outputs["explain"].stdout and "ROOD" in outputs["explain unknown"].stderr
    assert outputs["explain unknown"].exit_code == 2
    assert "\\u001b" in outputs["evaluate --json"].stdout, "JSON keeps the data, escaped"
    for name, result in outputs.items():
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            assert unsafe_in(text) == [], f"{name} wrote {unsafe_in(text)} to {stream}"
        assert not any(line.startswith("COMPLIANT: vals") for line in result.output.splitlines()), name
