"""Personal data: masked without `pii`; clear with it, and every clear read in the audit log."""

from __future__ import annotations

from sqlalchemy import select

from gateway.complaints.models import Complainant, PiiRead
from gateway.complaints.pii import mask_name, mask_phone
from gateway.core.db import transaction
from tests.api.gql.conftest import Gateway

Q = '{ complaints(first: 3) { nodes { id complainant { name phone realName } } } }'


def test_masks() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_name("欧阳") == "欧*"
    assert mask_name("李") == "李"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("02812345678") == "028****5678"
    assert mask_phone("1234567") == "*******"
    assert mask_name(None) is None and mask_phone("") == ""


async def test_masked_without_pii_and_nothing_audited(gw: Gateway) -> None:
    a = await gw.gql(Q)
    assert all(n["complainant"] == {"name": "张**", "phone": "138****5678", "realName": True}
               for n in a.data["complaints"]["nodes"])
    async with transaction(gw.db.sessionmaker) as session:
        assert (await session.execute(select(PiiRead))).scalars().all() == []


async def test_clear_with_pii_and_each_read_audited(gw: Gateway) -> None:
    async with transaction(gw.db.sessionmaker) as session:  # a record of another name, to see no mix-up
        row = await session.get(Complainant, "R-STATION")
        assert row is not None
        row.name, row.phone = "欧阳修", "13900001111"
    a = await gw.gql(Q, roles="reader,pii", headers={"X-Request-Id": "audit-1"})
    nodes = {n["id"]: n["complainant"] for n in a.data["complaints"]["nodes"]}
    assert nodes["R-STATION"] == {"name": "欧阳修", "phone": "13900001111", "realName": True}
    assert all(c["name"] == "张三丰" for rid, c in nodes.items() if rid != "R-STATION")
    b = await gw.gql('{ complaint(id: "R-COUNTY") { complainant { phone } } }', roles="reader,pii", sub="auditor-2")
    assert b.data["complaint"]["complainant"]["phone"] == "13812345678"

    async with transaction(gw.db.sessionmaker) as session:
        reads = (await session.execute(select(PiiRead).order_by(PiiRead.id))).scalars().all()
    assert [(r.actor, r.complaint_id, r.fields, r.request_id) for r in reads[:3]] == [
        ("tester", rid, "name,phone", "audit-1") for rid in sorted(nodes)
    ]
    assert (reads[3].actor, reads[3].complaint_id, reads[3].fields) == ("auditor-2", "R-COUNTY", "phone")
    assert len(reads) == 4 and all(r.actor_unit == "100000" and r.at for r in reads)

    # the gateway lists its audit log to pii holders, newest first, within their jurisdiction
    log = await gw.gql("{ auditLog(first: 10) { nodes { actor complaintId fields requestId } } }", roles="pii")
    newest = log.data["auditLog"]["nodes"][0]
    assert (newest["actor"], newest["complaintId"], newest["fields"]) == ("auditor-2", "R-COUNTY", ["phone"])
    assert len(newest["requestId"]) == 32  # generated: that request sent none
    assert len(log.data["auditLog"]["nodes"]) == 4
    station = await gw.gql("{ auditLog { nodes { complaintId } } }", roles="pii", unit="510802001")
    assert [n["complaintId"] for n in station.data["auditLog"]["nodes"]] == ["R-STATION"]
    denied = await gw.gql("{ auditLog { nodes { complaintId } } }")
    assert denied.codes() == ["FORBIDDEN"]


async def test_masked_fields_not_asked_are_not_audited(gw: Gateway) -> None:
    await gw.gql('{ complaint(id: "R-STATION") { complainant { realName } } }', roles="reader,pii")
    async with transaction(gw.db.sessionmaker) as session:
        assert (await session.execute(select(PiiRead))).scalars().all() == []
