"""The complaint-platform simulator as a 1.1 platform: records carry `updated_at` versions (records.md 1.1), and
its pushes are signed `t=<unix seconds>,v1=<HMAC of "t.body">` (interfaces.md 1.1), checked here by a
receiver on loopback that recomputes the HMAC itself."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from connectors.simulators import complaints, generate_records, run_in_thread, sign

SECRET = "platform-push-secret"


class Receiver:
    """An ASGI app that keeps every POST it gets (headers and raw body) and answers like the gateway."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.got.append((headers, body))
        answer = json.dumps({"stored": len(json.loads(body)["items"]), "rejected": []}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})


def verify(header: str, body: bytes, secret: str = SECRET) -> int:
    """The signed time, when the header is a valid 1.1 signature of this body; AssertionError otherwise."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    assert set(parts) == {"t", "v1"} and parts["t"].isdigit()
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    return int(parts["t"])


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    with run_in_thread(app) as url:
        yield app, f"{url}/api/v1/ingest/complaints"


def test_sign_is_hmac_of_time_dot_body() -> None:
    body = '{"items":[{"summary":"食品"}]}'.encode()
    header = sign(SECRET, body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and verify(header, body) == 1_700_000_000
    assert sign(SECRET, body, 1_700_000_001) != header  # the time is signed
    assert sign(SECRET, body + b" ", 1_700_000_000) != header  # so is every byte of the body
    with pytest.raises(AssertionError):
        verify(header, body, "another-secret")


def test_generated_records_carry_their_version() -> None:
    for rec in generate_records(300, seed=21):
        version = datetime.fromisoformat(rec["updated_at"])
        assert version.utcoffset() is not None
        assert version >= datetime.fromisoformat(rec["received_at"])
        assert all(version >= datetime.fromisoformat(e["at"]) for e in rec["events"])


def test_pushes_are_signed_per_request_and_split_at_1000(receiver: tuple[Receiver, str]) -> None:
    app, url = receiver
    records = generate_records(1001, seed=22)
    with run_in_thread(complaints.create_app(records[:5])) as platform:
        before = int(time.time())
        pushed = httpx.post(f"{platform}/_sim/push", json={"url": url, "secret": SECRET, "items": records},
                            timeout=30).json()["pushed"]
        after = int(time.time())
        assert [p["status"] for p in pushed] == [200, 200] and [p["body"]["stored"] for p in pushed] == [1000, 1]
        sent = []
        for headers, body in app.got:
            assert headers["content-type"] == "application/json"
            assert before <= verify(headers["x-signature"], body) <= after
            sent += json.loads(body)["items"]
        assert sent == records

        # A push signed at a chosen time (a replay of an old one, for the receiver's tolerance), by id.
        app.got.clear()
        httpx.post(f"{platform}/_sim/push", json={"url": url, "secret": SECRET, "ids": [records[0]["id"]],
                                                  "t": 1_600_000_000}, timeout=30).raise_for_status()
        [(headers, body)] = app.got
        assert verify(headers["x-signature"], body) == 1_600_000_000
        assert json.loads(body)["items"] == [records[0]]


def test_a_changed_record_gets_a_later_version_and_is_pushed(receiver: tuple[Receiver, str]) -> None:
    app, url = receiver
    rec = generate_records(1, seed=23)[0]
    with run_in_thread(complaints.create_app([rec], push_url=url, push_secret=SECRET)) as platform:
        versions = []
        for summary in ("第一次修改", "第二次修改", "第三次修改"):
            answer = httpx.post(f"{platform}/_sim/records",
                                json={"items": [{**rec, "summary": summary}], "stamp": True}, timeout=30).json()
            assert answer["pushed"] == [{"status": 200, "body": {"stored": 1, "rejected": []}}]
            current = httpx.get(f"{platform}/api/v1/complaints/{rec['id']}").json()
            assert current["summary"] == summary
            versions.append(datetime.fromisoformat(current["updated_at"]))
        assert versions[0] > datetime.fromisoformat(rec["updated_at"])
        assert versions == sorted(versions) and len(set(versions)) == 3  # strictly later each time
        pushed = [json.loads(body)["items"][0] for _, body in app.got]
        assert [datetime.fromisoformat(p["updated_at"]) for p in pushed] == versions
        for headers, body in app.got:
            verify(headers["x-signature"], body)
        # Unstamped puts keep what the test gave, broken or stale: tests feed such records on purpose.
        stale = {**rec, "summary": "旧副本"}
        httpx.post(f"{platform}/_sim/records", json={"items": [stale]}, timeout=30).raise_for_status()
        assert httpx.get(f"{platform}/api/v1/complaints/{rec['id']}").json()["updated_at"] == rec["updated_at"]


def test_push_to_nowhere_is_reported_not_raised() -> None:
    with run_in_thread(complaints.create_app([])) as platform:
        answer: Any = httpx.post(f"{platform}/_sim/push", json={
            "url": "http://127.0.0.1:9/api/v1/ingest/complaints", "secret": SECRET, "items": [{"id": "X"}]},
            timeout=30).json()
    assert answer["pushed"][0]["status"] is None and "ConnectError" in answer["pushed"][0]["error"]
