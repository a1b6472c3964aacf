"""The replay transport answers exactly as FIXTURES.md specifies."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from m365audit.errors import UsageError
from m365audit.graph import ReplayTransport


def write(folder: Path, name: str, method: str, url: str, status: int = 200, **response: Any) -> None:
    ex = folder / "exchanges"
    ex.mkdir(parents=True, exist_ok=True)
    resp: dict[str, Any] = {"status": status, **response}
    (ex / name).write_text(json.dumps({"request": {"method": method, "url": url}, "response": resp}))


def get(transport: ReplayTransport, url: str, method: str = "GET") -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.request(method, url)

    return asyncio.run(go())


def test_path_matches_case_insensitively_without_trailing_slash_on_any_graph_host(tmp_path: Path) -> None:
    write(tmp_path, "010.json", "GET", "/v1.0/subscribedSkus/", body={"value": [1]})
    t = ReplayTransport.from_folder(tmp_path)
    assert get(t, "https://graph.microsoft.com/v1.0/SUBSCRIBEDSKUS").json() == {"value": [1]}
    assert get(t, "http://127.0.0.1:9999/v1.0/subscribedskus").status_code == 200


def test_recorded_query_parameters_must_all_be_present_and_equal(tmp_path: Path) -> None:
    write(tmp_path, "010.json", "GET", "/v1.0/users", body={"page": 1})
    write(tmp_path, "020.json", "GET", "/v1.0/users?$skiptoken=p2", body={"page": 2})
    t = ReplayTransport.from_folder(tmp_path)
    assert get(t, "https://graph.microsoft.com/v1.0/users?$select=id&$top=999").json() == {"page": 1}
    assert get(t, "https://graph.microsoft.com/v1.0/users?$top=999&$SKIPTOKEN=p2").json() == {"page": 2}
    assert get(t, "https://graph.microsoft.com/v1.0/users?$skiptoken=p3").json() == {"page": 1}


def test_method_must_match(tmp_path: Path) -> None:
    write(tmp_path, "010.json", "POST", "/v1.0/security/auditLog/queries", 201, body={"id": "q"})
    t = ReplayTransport.from_folder(tmp_path)
    assert get(t, "https://graph.microsoft.com/v1.0/security/auditLog/queries").status_code == 599
    assert get(t, "https://graph.microsoft.com/v1.0/security/auditLog/queries", "POST").status_code == 201


def test_equally_specific_matches_form_a_sequence_whose_last_keeps_answering(tmp_path: Path) -> None:
    write(tmp_path, "010.json", "GET", "/v1.0/users", 429, headers={"Retry-After": "3"}, body={})
    write(tmp_path, "011.json", "GET", "/v1.0/users", body={"value": []})
    t = ReplayTransport.from_folder(tmp_path)
    statuses = [get(t, "https://graph.microsoft.com/v1.0/users").status_code for _ in range(3)]
    assert statuses == [429, 200, 200]


def test_body_text_and_body_file_are_served_byte_for_byte(tmp_path: Path) -> None:
    write(tmp_path, "010.json", "GET", "/v1.0/a", body_text="Report Refresh Date,User\n")
    (tmp_path / "exchanges" / "020.body").write_bytes(b'{ "value" : [ ] }\n')
    write(tmp_path, "020.json", "GET", "/v1.0/b", body_file="020.body")
    t = ReplayTransport.from_folder(tmp_path)
    assert get(t, "https://graph.microsoft.com/v1.0/a").content == b"Report Refresh Date,User\n"
    assert get(t, "https://graph.microsoft.com/v1.0/b").content == b'{ "value" : [ ] }\n'


def test_a_body_file_is_read_when_served_and_a_missing_one_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "exchanges").mkdir()
    body = tmp_path / "exchanges" / "020.body"
    body.write_bytes(b'{"value":[1]}')
    write(tmp_path, "020.json", "GET", "/v1.0/b", body_file="020.body")
    t = ReplayTransport.from_folder(tmp_path)
    assert t.recorded[0].body == b""  # nothing held until it is asked for
    body.write_bytes(b'{"value":[2]}')
    assert get(t, "https://graph.microsoft.com/v1.0/b").json() == {"value": [2]}
    body.unlink()
    with pytest.raises(UsageError, match="020.json.*020.body is missing"):
        ReplayTransport.from_folder(tmp_path)


def test_unrecorded_requests_get_599_not_recorded_and_are_remembered(tmp_path: Path) -> None:
    write(tmp_path, "010.json", "GET", "/v1.0/a", body={})
    t = ReplayTransport.from_folder(tmp_path)
    response = get(t, "https://graph.microsoft.com/v1.0/nothing-here")
    assert response.status_code == 599 and response.json()["error"]["code"] == "NotRecorded"
    assert t.unmatched == ["GET https://graph.microsoft.com/v1.0/nothing-here"]


def test_an_absolute_recorded_url_only_answers_its_own_host(tmp_path: Path) -> None:
    write(tmp_path, "010.json", "GET", "https://graph.microsoft.com/v1.0/a", body={})
    t = ReplayTransport.from_folder(tmp_path)
    assert get(t, "https://graph.microsoft.com/v1.0/a").status_code == 200
    assert get(t, "https://elsewhere.example/v1.0/a").status_code == 599


def test_a_malformed_exchange_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "exchanges").mkdir()
    (tmp_path / "exchanges" / "010-broken.json").write_text('{"request": {"url": "/v1.0/a"}}')
    with pytest.raises(UsageError, match="010-broken.json"):
        ReplayTransport.from_folder(tmp_path)


def test_a_folder_without_exchanges_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no recorded exchanges"):
        ReplayTransport.from_folder(tmp_path)


def test_a_run_folder_whose_snapshot_is_damaged_is_refused_with_a_hint(tmp_path: Path) -> None:
    from m365audit.graph import tenant_metadata

    write(tmp_path, "010.json", "GET", "/v1.0/a", body={})
    (tmp_path / "snapshot.json").write_bytes(b'{"tenant_id":"t",,"sources":{\n"x":')
    with pytest.raises(UsageError, match="cannot replay .*snapshot.json:1: not valid JSON") as caught:
        tenant_metadata(tmp_path)
    assert "verify" in (caught.value.hint or "")


@pytest.mark.parametrize("body_file", ["../secret.txt", "sub/../../secret.txt", "/etc/hostname", "C:\\secret.txt",
                                       "..\\secret.txt", 7, ""])
def test_a_body_file_outside_the_recording_is_refused_naming_the_exchange(tmp_path: Path, body_file: Any) -> None:
    (tmp_path / "secret.txt").write_text("not Graph")
    write(tmp_path, "020-users.json", "GET", "/v1.0/users", body_file=body_file)
    with pytest.raises(UsageError) as caught:
        ReplayTransport.from_folder(tmp_path)
    assert "020-users.json" in caught.value.message and caught.value.exit_code == 2
    assert "inside the recording" in caught.value.message


def test_a_body_file_symlink_pointing_out_is_refused_and_one_pointing_in_is_served(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("not Graph")
    write(tmp_path, "010-a.json", "GET", "/v1.0/a", body_file="010.body")
    (tmp_path / "exchanges" / "010.body").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(UsageError) as caught:
        ReplayTransport.from_folder(tmp_path)
    assert "010-a.json" in caught.value.message and "outside" in caught.value.message
    (tmp_path / "exchanges" / "010.body").unlink()
    (tmp_path / "exchanges" / "real.body").write_bytes(b'{"value":[]}')
    (tmp_path / "exchanges" / "010.body").symlink_to("real.body")
    assert get(ReplayTransport.from_folder(tmp_path), "https://graph.microsoft.com/v1.0/a").json() == {"value": []}


def test_record_from_a_hostile_recording_reads_nothing_outside_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from m365audit.cli import cli

    (tmp_path / "secret.txt").write_text('{"value": [{"id": "leaked"}]}')
    write(tmp_path, "010-organization.json", "GET", "/v1.0/organization", body_file="../secret.txt")
    result = CliRunner().invoke(cli, ["record", str(tmp_path / "out"), "--from", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "010-organization.json" in result.output and not (tmp_path / "out").exists()
