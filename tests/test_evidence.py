"""One reply's evidence package, through its whole life (the real dev server, both
databases): what is in it, who may have it, and that it verifies offline with the
standalone verifier and fails once any byte of it changes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from lifecycle.words import Role
from policies.engine import RuleSet
from records import checkpoints
from records.settings import Settings
from tests.conftest import Headers
from tests.helpers import new_post

pytestmark = pytest.mark.temporal
VERIFIER = Path(__file__).resolve().parent.parent / "countersign" / "offline_verifier.py"
FAULT = "We are sorry, this was our fault. A colleague will message you privately today."
FIXED = "We are sorry about this. A colleague will message you privately today."


async def login(client: httpx.AsyncClient, username: str) -> Headers:
    answer = await client.post(
        "/api/v1/auth/token",
        data={"username": username, "password": "correct horse battery staple"},
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def a_published_reply(client: httpx.AsyncClient, people: dict[str, Headers]) -> int:
    """v1 admits fault (comms, legal); legal asks for changes; v2 is approved by both and
    published."""
    post_id = await new_post(client, people["agent"], "You charged me twice!")
    created = await client.post(
        "/api/v1/drafts", headers=people["agent"], json={"post_id": post_id, "body": FAULT}
    )
    url = f"/api/v1/drafts/{created.json()['id']}"
    await client.post(f"{url}/submit", headers=people["agent"])
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    await client.post(f"{url}/decisions", headers=people["comms"], json=approve)
    changes = {"stage": "legal", "decision": "request_changes", "version": 1, "comment": "No."}
    await client.post(f"{url}/decisions", headers=people["legal"], json=changes)
    edit = {"body": FIXED, "expected_version": 1}
    assert (await client.put(url, headers=people["agent"], json=edit)).status_code == 200
    submitted = (await client.post(f"{url}/submit", headers=people["agent"])).json()
    for who, stage in [("comms", "comms"), ("legal", "legal")][: len(submitted["route"])]:
        decision = {"stage": stage, "decision": "approve", "version": 2}
        answer = await client.post(f"{url}/decisions", headers=people[who], json=decision)
        assert answer.status_code == 200, answer.text
    published = (await client.post(f"{url}/publish", headers=people["pub"])).json()
    assert published["status"] == "published", published
    return int(created.json()["id"])


def verify_offline(package: Path, key: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-I", str(VERIFIER), "--evidence", str(package), "--key", key]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")


async def test_a_replys_evidence_package_holds_what_a_regulator_asks_and_verifies_offline(
    client: httpx.AsyncClient,
    people: dict[str, Headers],
    make_user: Callable[..., str],
    live_settings: Settings,
    tmp_path: Path,
) -> None:
    make_user("adm", Role.admin)
    make_user("aud", Role.auditor)
    admin, auditor = await login(client, "adm"), await login(client, "aud")
    set_it = await client.patch(
        "/api/v1/users/legal", headers=admin, json={"qualification": "FINRA CRD 1234567"}
    )
    assert set_it.status_code == 200 and set_it.json()["qualification"] == "FINRA CRD 1234567"
    draft_id = await a_published_reply(client, people)
    url = f"/api/v1/drafts/{draft_id}/evidence"
    assert (await client.get(url, headers=people["agent"])).status_code == 403
    assert (await client.get(url, headers=people["boss"])).status_code == 200  # supervisor
    answer = await client.get(url, headers=auditor)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    package = tmp_path / "evidence.zip"
    package.write_bytes(answer.content)

    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        names = set(archive.namelist())
        read = archive.read
        assert {"post.json", "versions/v1.txt", "versions/v2.txt", "redlines/v1-v2.diff"} <= names
        assert {"decisions.json", "publication.json", "events.jsonl", "proofs.json"} <= names
        assert {"checkpoint.txt", "evidence.pdf", "manifest.json", "manifest.sig"} <= names
        assert read("versions/v2.txt").decode() == FIXED
        assert b"-We are sorry, this was our fault." in read("redlines/v1-v2.diff")
        decisions = json.loads(read("decisions.json"))
        [legal] = [d for d in decisions if d["stage"] == "legal"]  # asked for changes to v1
        assert (legal["reviewer"], legal["role"]) == ("legal", "legal")
        assert legal["qualification"] == "FINRA CRD 1234567" and legal["at"]
        approvals = [(d["reviewer"], d["version"]) for d in decisions if d["decision"] == "approve"]
        assert ("comms", 2) in approvals
        [publication] = json.loads(read("publication.json"))
        assert publication["status"] == "confirmed" and publication["first_published_at"]
        shipped = RuleSet.load()
        assert read(f"rulesets/{shipped.version}.yaml").decode() == shipped.source
        assert read("evidence.pdf").startswith(b"%PDF")
        assert json.loads(read("post.json"))["text"] == "You charged me twice!"

    key = checkpoints.signer_of(live_settings).verifier_key
    checked = verify_offline(package, key)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith(f"ok: draft {draft_id},")

    # One changed byte in any file inside, or in the file itself: refused.
    for member in ("versions/v2.txt", "decisions.json", "events.jsonl", "evidence.pdf"):
        altered = tmp_path / "altered.zip"
        with zipfile.ZipFile(package) as source, zipfile.ZipFile(altered, "w") as target:
            for info in source.infolist():
                data = bytearray(source.read(info))
                if info.filename == member:
                    data[len(data) // 2] ^= 0x01
                target.writestr(info, bytes(data))
        found = verify_offline(altered, key)
        assert found.returncode == 1 and found.stdout.startswith("NOT OK"), (member, found.stdout)
    raw = bytearray(package.read_bytes())
    raw[len(raw) // 3] ^= 0x01
    package.write_bytes(bytes(raw))
    assert verify_offline(package, key).returncode == 1
