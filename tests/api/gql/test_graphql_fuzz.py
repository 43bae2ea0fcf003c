"""Property: no input makes an internal error (interfaces.md 1.1). hypothesis-graphql writes operations for
every root field and mutation from the schema — valid ones and ones with one violation — with any text
(U+0000 and lone surrogates included) and any JSON in `data`; they are sent as written, or with their
arguments lifted into variables, by POST or GET, with a token of every role (and of a unit nobody knows),
to the gateway served on loopback on each database. Every answer must be a 4xx or a GraphQL answer, valid
JSON, each error with a code, never HTTP 500 nor `INTERNAL`. `make fuzz` runs many more examples."""

from __future__ import annotations

import json
import string
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from conftest import token
from gql_support import CALLERS, PLACES, USCC_A
from graphql import (
    ArgumentNode,
    BooleanValueNode,
    FieldNode,
    FloatValueNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    IntValueNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    NullValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    TypeNode,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    parse,
    print_ast,
    value_from_ast_untyped,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from gateway.api.gql.schema import graphql_schema
from gateway.core.auth import ROLES
from gateway.core.cursor import encode_cursor
from tests.fuzzing import budget

SCHEMA: GraphQLSchema = graphql_schema()
assert SCHEMA.query_type is not None and SCHEMA.mutation_type is not None
ROOT_FIELDS = [*sorted(SCHEMA.query_type.fields), *sorted(SCHEMA.mutation_type.fields)]

# Any code point: U+0000 and lone surrogates included (they travel as JSON escapes).
ANY_TEXT = st.text(st.characters(codec=None), max_size=30)
TEXT = st.one_of(ANY_TEXT, st.sampled_from(["", "\x00", "\ud800", "a\udfffb", "510802001", "R-STATION", "😀"]))
NAMES = st.text(string.ascii_letters + "_", min_size=1, max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=12,
)
INSTANTS = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.sampled_from(["2024-03-02T09:00:00+08:00", "2024-02-30T00:00:00Z", "9999-12-31T23:59:59-23:59", "now"]),
    TEXT,
)
DATES = st.one_of(st.dates().map(lambda d: d.isoformat()), st.sampled_from(["2024-02-30", "0000-01-01"]), TEXT)


def node(value: Any) -> ValueNode:
    """A GraphQL literal for a JSON value."""
    if value is None:
        return NullValueNode()
    if isinstance(value, bool):
        return BooleanValueNode(value=value)
    if isinstance(value, int):
        return IntValueNode(value=str(value))
    if isinstance(value, float):
        return FloatValueNode(value=repr(value))
    if isinstance(value, str):
        return StringValueNode(value=value)
    if isinstance(value, list):
        return ListValueNode(values=tuple(node(v) for v in value))
    return ObjectValueNode(fields=tuple(ObjectFieldNode(name=NameNode(value=k), value=node(v))
                                        for k, v in value.items()))


DATA = st.one_of(
    JSON_VALUES.map(node),
    st.fixed_dictionaries({"reason": TEXT}).map(node),
    st.just(FloatValueNode(value="1e999")),
    st.integers(1, 40).map(lambda n: node(_nested(n))),
)
# Strings and ids that reach something (records of the world, units, an enterprise, cursors) as well as any.
KNOWN = [*PLACES, *CALLERS.values(), "510802001", "999999", USCC_A, "default", "R-STATION-e1",
         encode_cursor(datetime(2024, 3, 5, tzinfo=UTC), "R-STATION"), "1", "0"]
STRINGS = st.sampled_from(KNOWN) | TEXT
INTS = st.sampled_from([-1, 0, 1, 2, 3, 4, 5, 50, 500, 501, 2**31 - 1, -(2**31)]) | st.integers(-(2**31), 2**31 - 1)
CUSTOM_SCALARS = {"DateTime": INSTANTS.map(lambda v: StringValueNode(value=v)),
                  "Date": DATES.map(lambda v: StringValueNode(value=v)),
                  "JSON": DATA,
                  "ID": STRINGS.map(lambda v: StringValueNode(value=v)),
                  "String": STRINGS.map(lambda v: StringValueNode(value=v)),
                  "Int": INTS.map(lambda v: IntValueNode(value=str(v)))}


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"reason": "r"}
    for _ in range(levels - 1):
        value = {"reason": "r", "more": value}
    return value


@cache
def operations(field: str, mode: Mode) -> st.SearchStrategy[str]:
    return from_schema(SCHEMA, fields=[field], custom_scalars=CUSTOM_SCALARS, mode=mode, codec=None,
                       allow_x00=True)


def type_node(t: Any) -> TypeNode:
    if isinstance(t, GraphQLNonNull):
        return NonNullTypeNode(type=type_node(t.of_type))
    if isinstance(t, GraphQLList):
        return ListTypeNode(type=type_node(t.of_type))
    return NamedTypeNode(name=NameNode(value=t.name))


def lift_arguments(text: str) -> tuple[str, dict[str, Any] | None]:
    """The same operation with its root fields' arguments sent as variables (as it is, without variables,
    when it does not parse: a raw lone surrogate in a string, a negative case's broken literal)."""
    try:
        doc = parse(text)
    except GraphQLError:
        return text, None
    op = doc.definitions[0]
    assert isinstance(op, OperationDefinitionNode)
    root = SCHEMA.mutation_type if op.operation == OperationType.MUTATION else SCHEMA.query_type
    assert root is not None
    definitions: list[VariableDefinitionNode] = []
    variables: dict[str, Any] = {}
    for selection in op.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.name.value not in root.fields:
            continue
        args = root.fields[selection.name.value].args
        lifted = []
        for arg in selection.arguments or ():
            if arg.name.value not in args:  # a negative case naming an unknown argument: keep it
                lifted.append(arg)
                continue
            name = f"v{len(definitions)}"
            definitions.append(VariableDefinitionNode(variable=VariableNode(name=NameNode(value=name)),
                                                      type=type_node(args[arg.name.value].type)))
            variables[name] = value_from_ast_untyped(arg.value)
            lifted.append(ArgumentNode(name=arg.name, value=VariableNode(name=NameNode(value=name))))
        selection.arguments = tuple(lifted)
    op.variable_definitions = tuple(definitions)
    return print_ast(doc), variables


@pytest.fixture
async def live(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=60) as client:
        yield client


def check(resp: httpx.Response, sent: str) -> None:
    assert resp.status_code < 500, (resp.status_code, sent, resp.text)
    body = orjson.loads(resp.content)  # strict: no NaN, no lone surrogate, in any answer
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code and code != "INTERNAL", (sent, error)


CALLER = st.tuples(st.sampled_from([*CALLERS.values(), "999999"]),
                   st.sets(st.sampled_from(ROLES), min_size=0, max_size=len(ROLES)))


async def send(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None, caller: tuple[str, Any],
               method: str, extra_variable: Any = None) -> None:
    unit, roles = caller
    headers = {"Authorization": f"Bearer {token(unit, ','.join(sorted(roles)))}"}
    if variables is not None and extra_variable is not None:
        variables = {**variables, **extra_variable}
    if method == "GET" and not query.lstrip().startswith("mutation"):
        params = {"query": query}
        if variables is not None:
            params["variables"] = json.dumps(variables, ensure_ascii=False)
        # A lone surrogate cannot be UTF-8: it goes as the bytes a careless client would send (%ED%A0%80).
        qs = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in params.items()})
        resp = await client.get(f"/graphql?{qs}", headers=headers)
    else:
        body = json.dumps({"query": query, "variables": variables})  # escapes lone surrogates; NaN as NaN
        resp = await client.post("/graphql", content=body, headers={**headers, "Content-Type": "application/json"})
    check(resp, f"{method} {query} {variables!r}")


@pytest.mark.fuzz
@pytest.mark.parametrize("field", ROOT_FIELDS)
@budget(suite=3, fuzz=120)
@given(data=st.data())
async def test_no_operation_makes_an_internal_error(live: httpx.AsyncClient, field: str, data: st.DataObject) -> None:
    mode = data.draw(st.sampled_from([Mode.POSITIVE, Mode.NEGATIVE]), label="mode")
    query = data.draw(operations(field, mode), label="query")
    caller = data.draw(CALLER, label="caller")
    method = data.draw(st.sampled_from(["POST", "GET"]), label="method")
    if data.draw(st.booleans(), label="as variables"):
        query, variables = lift_arguments(query)
        extra = data.draw(st.one_of(st.none(), st.dictionaries(st.sampled_from(sorted(variables or {}) or ["x"]),
                                                               JSON_VALUES, max_size=1)), label="replaced")
        await send(live, query, variables, caller, method, extra)
    else:
        await send(live, query, None, caller, method)


RECORD_EVENT = """mutation R($id: ID!, $event: EventInput!) {
  recordEvent(complaintId: $id, event: $event) { id events { id type at unit data } deadlines { code state } }
}"""
EVENT_TYPES = sorted(SCHEMA.get_type("EventType").values)  # type: ignore[union-attr]


@pytest.mark.fuzz
@budget(suite=10, fuzz=400)
@given(complaint=st.sampled_from(sorted(PLACES)) | TEXT, type_=st.sampled_from(EVENT_TYPES) | TEXT,
       at=INSTANTS, unit=st.none() | st.sampled_from(["510802001", "510802", "999999"]) | TEXT,
       data=st.none() | JSON_VALUES | st.fixed_dictionaries({"reason": TEXT}) | st.fixed_dictionaries(
           {"to": TEXT, "working_days": st.integers(-2, 400) | JSON_VALUES, "satisfaction": TEXT}),
       event_id=TEXT)
async def test_record_event_with_any_input(live: httpx.AsyncClient, complaint: str, type_: str, at: str,
                                           unit: str | None, data: Any, event_id: str) -> None:
    """recordEvent on records that exist, with whatever an operator's tool may send: never internal."""
    variables = {"id": complaint, "event": {"id": event_id or "e", "type": type_, "at": at, "unit": unit,
                                            "data": data}}
    await send(live, RECORD_EVENT, variables, ("100000", {"operator", "reader"}), "POST")
