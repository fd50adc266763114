"""The audit trail over HTTP: search with filters and cursors, verify, streamed export."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import text

from lifecycle.words import Role
from records import audit, checkpoints, merkle
from records.db import Database
from tests.helpers import around_the_trigger

Headers = dict[str, str]


def test_search_verify_and_export(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
    database: Database,
) -> None:
    for n in range(12):
        make_user(f"user{n:02}", Role.agent)
    make_user("auditor", Role.auditor)
    make_user("boss", Role.supervisor)
    auditor, boss, agent = login("auditor"), login("boss"), login("user00")

    first = app_client.get("/api/v1/audit?limit=5", headers=auditor).json()
    assert [e["seq"] for e in first["items"]] == [1, 2, 3, 4, 5]
    event = first["items"][0]
    assert event["action"] == "user.created" and event["payload"]["username"] == "user00"
    assert len(event["hash"]) == 64 and event["prev_hash"] == "0" * 64
    rest = app_client.get(f"/api/v1/audit?limit=50&cursor={first['next_cursor']}", headers=auditor)
    assert [e["seq"] for e in rest.json()["items"]] == list(range(6, 15))
    assert app_client.get("/api/v1/audit", headers=boss).status_code == 200
    assert app_client.get("/api/v1/audit", headers=agent).status_code == 403
    by_actor = app_client.get("/api/v1/audit?actor=nobody", headers=auditor).json()
    assert by_actor["items"] == []
    future = app_client.get("/api/v1/audit?since=2999-01-01T00:00:00Z", headers=auditor)
    assert future.json()["items"] == []

    assert app_client.get("/api/v1/audit/verify", headers=auditor).json() == {
        "ok": True,
        "events_checked": 14,
        "first_bad_seq": None,
        "problem": None,
        "checkpoint_size": None,  # nothing signed yet
    }
    assert app_client.get("/api/v1/audit/verify", headers=boss).status_code == 403

    jsonl = app_client.get("/api/v1/audit/export?format=jsonl", headers=auditor)
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["seq"] for r in records] == list(range(1, 15))
    table = list(
        csv.DictReader(
            io.StringIO(app_client.get("/api/v1/audit/export?format=csv", headers=auditor).text)
        )
    )
    assert len(table) == 14 and table[0]["hash"] == records[0]["hash"]
    assert json.loads(table[0]["payload"]) == records[0]["payload"]

    with around_the_trigger(database) as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 9"))
    found = app_client.get("/api/v1/audit/verify", headers=auditor).json()
    assert (found["ok"], found["events_checked"], found["first_bad_seq"]) == (False, 9, 9)
    assert "event 9" in found["problem"]


def test_checkpoints_and_proofs_over_http_verify_with_the_rfc_algorithms(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
) -> None:
    """An auditor signs checkpoints, lists them with the verifier key, and gets inclusion
    and consistency proofs that RFC 9162's verification accepts against the signed roots."""
    for n in range(5):
        make_user(f"user{n:02}", Role.agent)
    make_user("auditor", Role.auditor)
    auditor, agent = login("auditor"), login("user00")
    first = app_client.post("/api/v1/audit/checkpoints", headers=auditor)
    assert first.status_code == 201 and first.json()["tree_size"] == 6
    assert app_client.post("/api/v1/audit/checkpoints", headers=agent).status_code == 403
    for n in range(5, 12):
        make_user(f"user{n:02}", Role.agent)
    second = app_client.post("/api/v1/audit/checkpoints", headers=auditor).json()
    listed = app_client.get("/api/v1/audit/checkpoints", headers=auditor).json()
    assert [c["tree_size"] for c in listed["items"]] == [6, 13]
    name, key = listed["log"], listed["verifier_key"]
    public = base64.b64decode(key.split("+", 2)[2])[1:]
    roots = {
        c["tree_size"]: checkpoints.open_note(c["note"], name=name, public_key=public).root
        for c in listed["items"]
    }
    consistency = app_client.get(
        "/api/v1/audit/proofs/consistency?old_size=6&tree_size=13", headers=auditor
    ).json()
    proof = [base64.b64decode(h) for h in consistency["hashes"]]
    assert merkle.verify_consistency(6, 13, roots[6], roots[13], proof)
    event = app_client.get("/api/v1/audit?limit=500", headers=auditor).json()["items"][8]
    fields = tuple(
        event[k] for k in ("at", "actor", "role", "action", "draft_id", "version", "content_sha256")
    )
    leaf = merkle.leaf_hash(
        audit.leaf_bytes(event["seq"], (*fields, None), event["payload_sha256"])
    )
    inclusion = app_client.get(
        f"/api/v1/audit/proofs/inclusion?seq={event['seq']}&tree_size=13", headers=auditor
    ).json()
    path = [base64.b64decode(h) for h in inclusion["hashes"]]
    assert merkle.verify_inclusion(leaf, event["seq"] - 1, 13, path, roots[13])
    assert second["note"] == listed["items"][1]["note"]
    too_far = app_client.get("/api/v1/audit/proofs/inclusion?seq=2&tree_size=99", headers=auditor)
    assert too_far.status_code == 422


def test_a_time_past_the_last_utc_datetime_is_a_clear_422(
    app_client: TestClient, make_user: Callable[..., str], login: Callable[..., Headers]
) -> None:
    """Found by the schema fuzzer: 9999-12-31T23:59:59-05:00 is a valid time that no UTC
    datetime can hold; it is refused as input, not a 500 from the database layer."""
    make_user("auditor", Role.auditor)
    make_user("boss", Role.supervisor)
    late = "9999-12-31T23:59:59-05:00"
    for url, who in (("/api/v1/audit/export", "auditor"), ("/api/v1/reports/kpis", "boss")):
        answer = app_client.get(url, params={"since": late}, headers=login(who))
        assert answer.status_code == 422 and "out of range" in answer.text, answer.text
