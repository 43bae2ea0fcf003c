"""Whatever an upstream answers — any header value, status, body or timing — a call ends in its result or in a
typed connector error (UPSTREAM_UNAVAILABLE / UPSTREAM_ERROR), never another exception; and nothing the
upstream sent appears in the error (interfaces.md 1.1). Served for real by the simulators' "canned" fault
over loopback: through the server for well-formed answers, as raw socket bytes for broken ones."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import UpstreamError, UpstreamFailure, UpstreamUnavailable
from connectors.simulators import enterprise_for
from tests.connectors.conftest import Make, Sim
from tests.fuzzing import budget

USCC = "91110000600037341L"
ENTERPRISES = json.dumps({"enterprises": [enterprise_for(USCC)]}).encode()
SECRET = "postgres://credit:hunter2@db-7.credit.internal:5432/credit"  # must never reach a caller


def canned(status: int = 200, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
           **extra: Any) -> dict[str, Any]:
    return {"status": status, "headers": headers or [], "body_b64": base64.b64encode(body).decode(), **extra}


def raw(data: bytes, **extra: Any) -> dict[str, Any]:
    return {"raw_b64": base64.b64encode(data).decode(), **extra}


def http_answer(status_line: bytes, headers: list[bytes], body: bytes, length: bool = True) -> bytes:
    lines = [status_line, *headers]
    if length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def retry_after(value: str) -> dict[str, Any]:
    # Raw, so that values the server would refuse to send (non-ASCII, huge) reach the client as they are.
    return raw(http_answer(b"HTTP/1.1 503 Service Unavailable", [b"Retry-After: " + value.encode()],
                           b'{"error": "busy"}'))


# ------------------------------------------------------------------------------------- recovered by a retry

# Each answer is served once, then the simulator answers properly: the call must retry and succeed.
ONCE_THEN_OK = {
    # Retry-After values no datetime holds, or that are not values at all: ignored, ordinary backoff.
    "retry-after year 99999999999": retry_after("Mon, 01 Jan 99999999999 00:00:00 GMT"),
    "retry-after year 0": retry_after("Mon, 01 Jan 0000 00:00:00 GMT"),
    "retry-after nan": retry_after("nan"),
    "retry-after inf": retry_after("inf"),
    "retry-after 1e400": retry_after("1e400"),
    "retry-after negative": retry_after("-86400"),
    "retry-after hex": retry_after("0x10"),
    "retry-after 5000 digits": retry_after("9" * 5000),
    "retry-after past date": retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
    "retry-after bad month": retry_after("Mon, 32 Foo 2024 25:61:61 GMT"),
    "retry-after chinese": retry_after("明天再来"),
    "retry-after two values": retry_after("1, 2"),
    "retry-after blank": retry_after("   "),
    "retry-after on 429 as date -0000": raw(http_answer(
        b"HTTP/1.1 429 Too Many Requests", [b"Retry-After: Mon, 01 Jan 2001 00:00:00 -0000"], b"")),
    # Statuses a later attempt may not get.
    "408": canned(408, body=b'{"error": "timeout"}'),
    "507": canned(507, body=SECRET.encode()),
    "599": canned(599),
    # 2xx bodies that break the contract: retried like a 5xx.
    "200 empty": canned(200),
    "204": canned(204),
    "200 html": canned(200, [("Content-Type", "text/html")], b"<html>oops</html>"),
    "200 deep nesting": canned(200, body=b"[" * 100_000),
    "200 NaN": canned(200, body=b'{"enterprises": NaN}'),
    "200 enterprise with NaN": canned(200, body=ENTERPRISES.replace(b'"risk_level": "', b'"x": NaN, "risk_level": "')
                                      .replace(b'"abnormal_operation": false', b'"abnormal_operation": NaN')),
    "200 huge integer": canned(200, body=b'{"enterprises": ' + b"1" * 5000 + b"}"),
    "200 invalid utf-8": canned(200, body=b'{"enterprises": ["\xff\xfe"]}'),
    "200 lone surrogate": canned(200, body=ENTERPRISES.replace(b'"name": "', b'"name": "\\ud800')),
    "200 wrong shape": canned(200, body=b'{"enterprises": {"a": 1}}'),
    "200 list": canned(200, body=b"[]"),
    "200 null": canned(200, body=b"null"),
    "200 gzip that is not": canned(200, [("Content-Encoding", "gzip")], ENTERPRISES),
    "200 chunked garbage": raw(http_answer(b"HTTP/1.1 200 OK", [b"Transfer-Encoding: chunked"],
                                           b"zz\r\nnot a chunk\r\n", length=False)),
    # Broken HTTP: the protocol layer refuses it.
    "garbage status line": raw(b"HTTP/1.1 2OO OK\r\n\r\n"),
    "not http at all": raw(b"SSH-2.0-OpenSSH_9.6\r\n"),
    "nothing then close": raw(b""),
    "NUL in a header": raw(http_answer(b"HTTP/1.1 200 OK", [b"X-Trace: a\x00b"], ENTERPRISES)),
    "header without colon": raw(http_answer(b"HTTP/1.1 200 OK", [b"this is not a header"], ENTERPRISES)),
    "content-length too long": raw(http_answer(b"HTTP/1.1 200 OK", [b"Content-Length: 99999"], b"{}",
                                               length=False)),
    "content-length twice": raw(http_answer(b"HTTP/1.1 200 OK", [b"Content-Length: 1"], ENTERPRISES)),
    "content-length negative": raw(http_answer(b"HTTP/1.1 200 OK", [b"Content-Length: -5"], b"{}",
                                               length=False)),
    "header of 200 KB": raw(http_answer(b"HTTP/1.1 200 OK", [b"X-Big: " + b"a" * 200_000], ENTERPRISES)),
}


@pytest.mark.parametrize("answer", ONCE_THEN_OK.values(), ids=ONCE_THEN_OK.keys())
async def test_hostile_answer_once_is_survived(make: Make, sims: dict[str, Sim], answer: dict[str, Any]) -> None:
    sims["credit"].faults(script=["canned", "ok"], canned=[answer])
    found = await make("credit", budget_s=5.0).enterprises([USCC])
    assert [e.uscc for e in found] == [USCC]
    assert sims["credit"].stats()["total_requests"] == 2


# ------------------------------------------------------------------------------------- every time: typed errors

# The same answer on every attempt: the call gives up with the error of that kind, after bounded attempts.
EVERY_TIME: dict[str, tuple[dict[str, Any], type[UpstreamFailure], int | None]] = {
    "503 year 99999999999": (retry_after("Mon, 01 Jan 99999999999 00:00:00 GMT"), UpstreamUnavailable, 503),
    "503 retry-after year 9999": (retry_after("Fri, 31 Dec 9999 23:59:59 GMT"), UpstreamUnavailable, 503),
    "429 nan": (raw(http_answer(b"HTTP/1.1 429 Slow Down", [b"Retry-After: nan"], b"")), UpstreamUnavailable, 429),
    "599": (canned(599, body=SECRET.encode()), UpstreamUnavailable, 599),
    "200 deep nesting": (canned(200, body=b"[" * 100_000), UpstreamError, 200),
    "200 lone surrogate": (canned(200, body=ENTERPRISES.replace(b'"name": "', b'"name": "\\ud800')),
                           UpstreamError, 200),
    "200 secret body": (canned(200, body=SECRET.encode()), UpstreamError, 200),
    "200 gzip that is not": (canned(200, [("Content-Encoding", "gzip")], ENTERPRISES), UpstreamError, 200),
    "201 over the size limit": (canned(201, body=b'{"enterprises": [' + b'"x",' * 5000 + b'"x"]}'),
                                UpstreamError, 201),
    "200 gzip bomb": (canned(200, [("Content-Encoding", "gzip")], gzip.compress(b" " * 5_000_000)),
                      UpstreamError, 200),
    "418": (canned(418, body=SECRET.encode()), UpstreamError, 418),
    "301": (canned(301, [("Location", "http://example.invalid/")]), UpstreamError, 301),
    "600": (raw(http_answer(b"HTTP/1.1 600 Whatever", [], SECRET.encode())), UpstreamError, 600),
    "999": (raw(http_answer(b"HTTP/1.1 999 Nine", [], b"{}")), UpstreamError, 999),
    "reset": (raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"), UpstreamUnavailable, None),
    "not http": (raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + SECRET.encode()), UpstreamUnavailable, None),
}


@pytest.mark.parametrize("case", EVERY_TIME.values(), ids=EVERY_TIME.keys())
async def test_hostile_answer_every_time_ends_as_a_typed_error(
    make: Make, sims: dict[str, Sim], case: tuple[dict[str, Any], type[UpstreamFailure], int | None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer, kind, status = case
    sims["credit"].faults(outage="canned", canned=[answer])
    with caplog.at_level(logging.INFO, "connectors"), pytest.raises(UpstreamFailure) as info:
        await make("credit", attempts=3, budget_s=3.0, max_body_bytes=16 * 1024).enterprises([USCC])
    error = info.value
    assert type(error) is kind and error.system == "credit" and error.status == status
    assert 1 <= sims["credit"].stats()["total_requests"] <= 3
    # The caller's error names the system, the status and the request id, and nothing the upstream said.
    sent = sims["credit"].requests()[-1]["request_id"]
    assert error.request_id == sent and sent in str(error)
    assert "hunter2" not in str(error) and "db-7" not in str(error)
    assert any(sent in r.getMessage() for r in caplog.records)  # the log has the answer, by request id


async def test_retry_after_date_beyond_the_budget_gives_up_without_waiting(make: Make, sims: dict[str, Sim]) -> None:
    sims["credit"].faults(outage="canned", canned=[retry_after("Fri, 31 Dec 9999 23:59:59 GMT")])
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamUnavailable, match="Retry-After"):
        await make("credit", budget_s=2.0).enterprises([USCC])
    assert loop.time() - started < 1.0
    assert sims["credit"].stats()["total_requests"] == 1


async def test_an_answer_that_trickles_is_cut_off_by_the_attempt_timeout(make: Make, sims: dict[str, Sim]) -> None:
    # Headers at once, then one byte every 50 ms: each read is quick, the whole answer is not.
    sims["credit"].faults(outage="canned", canned=[canned(200, body=ENTERPRISES, drip_s=0.05, drip_bytes=1)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamUnavailable, match="no answer within"):
        await make("credit", timeout_s=0.3, budget_s=0.8, attempts=5).enterprises([USCC])
    assert loop.time() - started < 1.5


async def test_a_write_whose_2xx_answer_is_broken_is_retried_under_the_same_key(
    make: Make, sims: dict[str, Sim]
) -> None:
    from connectors.models import ComplaintFlag

    flag = ComplaintFlag.model_validate({
        "flag_id": "f-broken-2xx", "uscc": USCC, "reason": "COMPLAINT_SURGE", "severity": "MEDIUM",
        "complaint_ids": ["C1"], "window_start": "2024-03-01T00:00:00+08:00",
        "window_end": "2024-04-01T00:00:00+08:00", "issued_by": "510802", "issued_at": "2024-03-20T00:00:00+08:00",
    })
    # The flag is stored, but the receipt comes back broken: the retry replays the key, no second flag.
    sims["credit"].faults(script=["canned-after"], canned=[canned(201, body=b'{"flag_id": 1}')])
    receipt = await make("credit").post_flag(flag)
    assert receipt.flag_id == "f-broken-2xx"
    keys = [r["idempotency_key"] for r in sims["credit"].requests()]
    assert keys == ["flag-f-broken-2xx"] * 2
    stats = sims["credit"].stats()
    assert stats["effects"] == {"POST /api/v1/complaint-flags": 1}
    assert stats["replays"] == {"POST /api/v1/complaint-flags": 1}


async def test_a_feed_that_does_not_advance_is_a_broken_answer(make: Make, sims: dict[str, Sim]) -> None:
    stuck = json.dumps({"items": [], "next_cursor": "", "has_more": True}).encode()
    sims["complaints"].faults(outage="canned", canned=[canned(200, body=stuck)])
    with pytest.raises(UpstreamError, match="does not advance"):
        await make("complaints", attempts=2).changes(None)


# ------------------------------------------------------------------------------------- property

HEADER_NAMES = st.sampled_from([b"Retry-After", b"Content-Type", b"Content-Encoding", b"Content-Length",
                                b"Transfer-Encoding", b"Connection", b"X-Anything", b"Location"])
STATUSES = st.one_of(st.sampled_from([200, 201, 204, 301, 400, 404, 408, 409, 422, 429, 500, 503, 504, 999]),
                     st.integers(100, 999))
BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                 max_leaves=20).map(lambda v: json.dumps({"enterprises": v}).encode()),
)
MARKER = "Zq7Marker"  # put in every answer: it must never show up in an error


@pytest.mark.fuzz
@budget(suite=60, fuzz=2000)
@given(status=STATUSES,
       headers=st.lists(st.tuples(HEADER_NAMES, st.binary(max_size=60)), max_size=4),
       body=BODIES,
       raw_framing=st.booleans())
def test_any_answer_ends_in_a_result_or_a_typed_error(
    sims: dict[str, Sim], status: int, headers: list[tuple[bytes, bytes]], body: bytes, raw_framing: bool
) -> None:
    # Header values go on the wire as they are, CR and LF included: framing may break, as it may for real.
    lines = [name + b": " + value + MARKER.encode() for name, value in headers]
    data = http_answer(f"HTTP/1.1 {status} X".encode(), lines, body + MARKER.encode(), length=not raw_framing)
    sims["credit"].faults(outage="canned", canned=[raw(data)])

    async def call() -> Any:
        from connectors import ConnectorConfig, CreditConnector

        config = ConnectorConfig(url=sims["credit"].url, token="test-token", timeout_s=1.0, attempts=2, budget_s=2.0,
                                 retry_budget=10.0, circuit_min_calls=1000, backoff_base_s=0.001,
                                 backoff_max_s=0.002)
        async with CreditConnector(config) as credit:
            return await credit.enterprises([USCC])

    try:
        found = asyncio.run(call())
    except UpstreamFailure as exc:
        assert exc.code in ("UPSTREAM_UNAVAILABLE", "UPSTREAM_ERROR")
        assert MARKER not in str(exc)
    else:
        assert all(e.uscc for e in found)
