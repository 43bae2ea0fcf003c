"""GraphQL over HTTP (the GraphQL-over-HTTP specification): POST and GET /graphql, written by hand so that
each step is ours: negotiate the media type, authenticate, find the document (in full or persisted),
parse and validate it (cached), refuse mutations over GET, measure depth and cost, execute, audit, answer.

Status codes: `application/graphql-response+json` answers a request error (parse, validation, variables,
limits) with 400 and anything that executed with 200; `application/json` answers every well-formed request
with 200. Malformed HTTP (bad JSON, wrong types) is 400, a bad token 401, a wrong method 405, an
unacceptable Accept 406, a body that is not JSON 415.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_variable_values

from connectors.context import request_id_var
from gateway.api.auth import authenticate
from gateway.api.gql import errors, limits
from gateway.api.gql.context import RequestContext
from gateway.api.gql.graphiql import GRAPHIQL_HTML
from gateway.api.gql.inputs import TextAndNumbersRule
from gateway.api.gql.persisted import PersistedOperations, document_hash
from gateway.api.gql.schema import graphql_schema
from gateway.complaints.pii import write_reads
from gateway.core import jsontext
from gateway.core.auth import AuthError, Principal, bearer_token
from gateway.core.db import make_sessionmaker
from gateway.core.jsontext import JSONInputError
from gateway.core.observability import REQUEST_ID, observe_operation, reserve_operation_labels
from gateway.core.settings import Settings
from gateway.core.upstreams import Upstreams
from gateway.units.cache import UnitCache
from gateway.units.jurisdiction import Jurisdiction

log = logging.getLogger(__name__)

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
MAX_BODY = 1024 * 1024
MAX_TOKENS = 20_000  # parse refuses larger documents before building them


class HttpProblem(Exception):
    """The HTTP request itself is wrong; answered before any GraphQL work."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


class RequestError(Exception):
    """A GraphQL request error: the request is well-formed but cannot be executed."""

    def __init__(self, errs: list[dict[str, Any]]) -> None:
        super().__init__(errs[0]["message"] if errs else "request error")
        self.errors = errs


# ------------------------------------------------------------------------------------------------ service


class GraphQLService:
    """What outlives a request: schema, validation rules, the document cache, persisted operations."""

    CACHE_SIZE = 1000

    def __init__(self, settings: Settings, upstreams: Upstreams, units: UnitCache) -> None:
        self.settings = settings
        self.upstreams = upstreams
        self.units = units
        self.schema: GraphQLSchema = graphql_schema()
        rules = [*specified_rules, TextAndNumbersRule]
        if not settings.graphql_introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self.rules = rules
        ops_dir = Path(settings.graphql_operations_dir) if settings.graphql_operations_dir else None
        self.persisted = PersistedOperations.load(ops_dir)
        reserve_operation_labels(op.name for op in self.persisted.by_hash.values())
        self._documents: OrderedDict[str, DocumentNode | list[GraphQLError]] = OrderedDict()
        # Measures by (document, operation) identity; dropped with the documents they belong to.
        self.measures: dict[Any, limits.Measure] = {}

    def document(self, text: str) -> DocumentNode:
        """Parsed and validated, from the cache when the same text came before."""
        hit = self._documents.get(text)
        if hit is None:
            try:
                doc = parse(text, max_tokens=MAX_TOKENS)
            except GraphQLError as exc:
                hit = [exc]
            else:
                problems = validate(self.schema, doc, self.rules)
                hit = problems or doc
            self._documents[text] = hit
            if len(self._documents) > self.CACHE_SIZE:
                self._documents.popitem(last=False)
                self.measures.clear()  # ids of evicted documents could be reused
        else:
            self._documents.move_to_end(text)
        if isinstance(hit, list):
            raise RequestError([_located(e) for e in hit])
        return hit


    def operation(self, document: DocumentNode, name: str | None) -> OperationDefinitionNode:
        """The operation of `document` to run (named when there are several); RequestError otherwise."""
        operation = get_operation_ast(document, name)
        if operation is None:
            raise RequestError([errors.request_error(
                errors.BAD_USER_INPUT, "name the operation to run (operationName)" if name is None
                else f"no operation named {name}")])
        return operation

    def check(self, document: DocumentNode, operation: OperationDefinitionNode,
              variables: dict[str, Any] | None) -> None:
        """Coerce the variables and measure depth and cost; RequestError (BAD_USER_INPUT, QUERY_TOO_COMPLEX)."""
        coerced = get_variable_values(self.schema, operation.variable_definitions or (), variables or {})
        if isinstance(coerced, list):
            raise RequestError([_located(e) | {"extensions": {"code": errors.BAD_USER_INPUT}} for e in coerced])
        try:
            limits.check(self.schema, document, operation, coerced, self.settings.max_depth, self.settings.max_cost,
                         self.measures)
        except errors.GatewayError as exc:
            raise RequestError([{"message": str(exc), "extensions": {"code": exc.code, **exc.extensions}}]) from None


def _located(error: GraphQLError) -> dict[str, Any]:
    out: dict[str, Any] = dict(error.formatted)
    code = errors.GRAPHQL_PARSE_FAILED if "Syntax Error" in error.message else errors.GRAPHQL_VALIDATION_FAILED
    out["extensions"] = {"code": code, **(out.get("extensions") or {})}
    return out


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The connectors are the application's (gateway/api/app.py): one set per process, shared with the
    # outbox dispatcher, so that each system has one circuit breaker and /readyz shows it.
    app.state.graphql = GraphQLService(app.state.settings, app.state.upstreams, UnitCache(app.state.engine))
    yield


router = APIRouter(lifespan=lifespan)


# ------------------------------------------------------------------------------------------------ HTTP


def negotiate(accept: str | None) -> str | None:
    """The response media type for this Accept header, or None when neither JSON type is acceptable."""
    if not accept or not accept.strip():
        return JSON  # legacy clients send none
    best: tuple[float, int, str] | None = None
    for index, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        media = media.lower()
        if q <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            chosen = GRAPHQL_RESPONSE
        elif media in (JSON, "application/*", "*/*"):
            chosen = JSON
        else:
            continue
        if best is None or q > best[0]:
            best = (q, index, chosen)
    return best[2] if best else None


def _encode(body: Any) -> bytes:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate from an upstream system: written as "?", never a 500
        return text.encode("utf-8", "replace")


def _answer(media: str, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status_code=status, media_type=f"{media}; charset=utf-8", headers=headers)


def _bad_json(exc: JSONInputError, what: str) -> HttpProblem:
    """`what` is not JSON (the message says where), or a value in it breaks records.md 1.1 (its path)."""
    return HttpProblem(400, errors.BAD_USER_INPUT, f"{what} is {exc}" if exc.line else str(exc))


def _json_object(text: Any, what: str) -> dict[str, Any] | None:
    if text is None or text == "":
        return None
    if isinstance(text, str):  # GET: a JSON text in a query parameter
        try:
            value = jsontext.decode(text)
            jsontext.check(value, where=what)
        except JSONInputError as exc:
            raise _bad_json(exc, what) from None
    else:
        value = text
    if value is None:
        return None
    if not isinstance(value, dict):
        raise HttpProblem(400, errors.BAD_USER_INPUT, f"{what} must be a JSON object")
    return value


def _str_or_none(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise HttpProblem(400, errors.BAD_USER_INPUT, f"{what} must be a string")
    reason = jsontext.text_problem(value)
    if reason is not None:
        raise HttpProblem(400, errors.BAD_USER_INPUT, f"{what} {reason}")
    return value


async def _params(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        q = request.query_params
        return {
            "query": _str_or_none(q.get("query") or None, "query"),
            "operationName": _str_or_none(q.get("operationName") or None, "operationName"),
            "variables": _json_object(q.get("variables"), "variables"),
            "extensions": _json_object(q.get("extensions"), "extensions"),
            "documentId": _str_or_none(q.get("documentId") or None, "documentId"),
        }
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != JSON:
        raise HttpProblem(415, errors.BAD_USER_INPUT, "POST a JSON body with Content-Type: application/json")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HttpProblem(413, errors.BAD_USER_INPUT, f"body over {MAX_BODY} bytes")
    try:
        # The one strict parser: NaN, lone surrogates, U+0000 and deep nesting are refused here, before
        # anything (authentication included) walks the body.
        data = jsontext.loads(body)
    except JSONInputError as exc:
        raise _bad_json(exc, "the body") from None
    if not isinstance(data, dict):
        raise HttpProblem(400, errors.BAD_USER_INPUT, "the body must be a JSON object")
    return {
        "query": _str_or_none(data.get("query"), "query"),
        "operationName": _str_or_none(data.get("operationName"), "operationName"),
        "variables": _json_object(data.get("variables"), "variables"),
        "extensions": _json_object(data.get("extensions"), "extensions"),
        "documentId": _str_or_none(data.get("documentId"), "documentId"),
    }


def _document_text(service: GraphQLService, params: dict[str, Any]) -> tuple[str, str | None]:
    """The text to run (sent in full, or looked up by hash; in safelist mode only persisted ones), and the name
    of the persisted operation it is, if it is one."""
    query: str | None = params["query"]
    wanted = params["documentId"]
    pq = (params["extensions"] or {}).get("persistedQuery")
    if wanted is None and isinstance(pq, dict):
        wanted = pq.get("sha256Hash")
        if not isinstance(wanted, str):
            raise HttpProblem(400, errors.BAD_USER_INPUT, "extensions.persistedQuery.sha256Hash must be a string")
    if wanted is not None:
        op = service.persisted.get(wanted)
        if query is not None:
            if document_hash(query) != wanted.removeprefix("sha256:").lower():
                raise RequestError([errors.request_error(errors.BAD_USER_INPUT, "the query does not match its hash")])
            if op is None and service.settings.graphql_safelist:
                raise RequestError([errors.request_error(errors.OPERATION_NOT_SAFELISTED,
                                                         "only persisted operations are accepted here")])
            return query, op.name if op else None
        if op is None:
            raise RequestError([errors.request_error(errors.PERSISTED_QUERY_NOT_FOUND,
                                                     f"no persisted operation {wanted}")])
        return op.text, op.name
    if query is None:
        raise HttpProblem(400, errors.BAD_USER_INPUT, "give a query, or a documentId of a persisted operation")
    op = service.persisted.get(document_hash(query)) if len(service.persisted) else None
    if service.settings.graphql_safelist and op is None:
        raise RequestError([errors.request_error(errors.OPERATION_NOT_SAFELISTED,
                                                 "only persisted operations are accepted here; send one by hash")])
    return query, op.name if op else None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request ready to execute: who asks, what they may see, and the checked operation."""

    principal: Principal
    jurisdiction: Jurisdiction
    document: DocumentNode
    operation: OperationDefinitionNode
    params: dict[str, Any]
    persisted: str | None  # the persisted operation's name, when it is one (its metrics label)


async def _prepare(request: Request, service: GraphQLService) -> Prepared:
    """Parse the HTTP request, sign the caller in, find, parse and validate the document, coerce the variables
    and check the limits. Raises HttpProblem (the HTTP request is wrong, or the caller is refused) or
    RequestError (a GraphQL request error)."""
    params = await _params(request)
    try:
        principal = authenticate(service.settings, bearer_token(request.headers.get("authorization")))
    except AuthError as exc:
        raise HttpProblem(401, errors.UNAUTHENTICATED, str(exc),
                          {"WWW-Authenticate": 'Bearer realm="12315-gateway"'}) from None
    text, persisted = _document_text(service, params)
    document = service.document(text)
    operation = service.operation(document, params["operationName"])
    if operation.operation == OperationType.SUBSCRIPTION:
        raise RequestError([errors.request_error(
            errors.BAD_USER_INPUT, "subscriptions are served over WebSocket (graphql-transport-ws) at /graphql")])
    if request.method == "GET" and operation.operation != OperationType.QUERY:
        raise HttpProblem(405, errors.BAD_USER_INPUT, "mutations are POSTed, never sent by GET", {"Allow": "POST"})
    service.check(document, operation, params["variables"])
    jurisdiction = await service.units.jurisdiction_of(principal.unit)
    if jurisdiction is None:
        raise HttpProblem(403, errors.FORBIDDEN, f"the token's unit {principal.unit} is not a known org unit")
    return Prepared(principal, jurisdiction, document, operation, params, persisted)


async def _execute(request: Request, service: GraphQLService, prepared: Prepared,
                   request_id: str) -> tuple[dict[str, Any], RequestContext]:
    """Execute the operation; the response body, and the context that holds the clear reads to audit."""
    engine = request.app.state.engine
    sessionmaker = getattr(request.app.state, "sessionmaker", None) or make_sessionmaker(engine)
    ctx = RequestContext(prepared.principal, prepared.jurisdiction, service.settings, engine, sessionmaker,
                         service.upstreams, service.units, request_id)
    started = time.perf_counter()
    result = execute(service.schema, prepared.document, context_value=ctx,
                     variable_values=prepared.params["variables"], operation_name=prepared.params["operationName"])
    if not isinstance(result, ExecutionResult):
        result = await result
    operation = prepared.operation
    observe_operation(operation.name.value if operation.name else None, result.data is not None,
                      bool(result.errors), time.perf_counter() - started, persisted=prepared.persisted)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [errors.format_error(e) for e in result.errors]
    return body, ctx


def _request_id(request: Request) -> str:
    """The request's id: the HTTP middleware has usually set it already (gateway/core/observability.py);
    keep one id per request."""
    incoming = request.headers.get("x-request-id", "")
    request_id = request_id_var.get() or (incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex)
    request_id_var.set(request_id)
    return request_id


@router.api_route("/graphql", methods=["GET", "POST"], include_in_schema=False)
async def graphql_endpoint(request: Request) -> Response:
    request_id = _request_id(request)
    headers = {"X-Request-Id": request_id}
    accept = request.headers.get("accept")
    media = negotiate(accept)
    if media is None:
        return _answer(JSON, 406, {"errors": [errors.request_error(
            errors.BAD_USER_INPUT, f"cannot answer in {accept}; accept {GRAPHQL_RESPONSE} or {JSON}")]}, headers)
    if (request.method == "GET" and "text/html" in (accept or "")
            and not {"query", "documentId", "extensions"} & set(request.query_params)):
        return HTMLResponse(GRAPHIQL_HTML, headers=headers)
    service: GraphQLService = request.app.state.graphql
    try:
        prepared = await _prepare(request, service)
    except HttpProblem as exc:
        return _answer(media, exc.status, {"errors": [errors.request_error(exc.code, str(exc))]},
                       headers | exc.headers)
    except RequestError as exc:
        return _answer(media, 400 if media == GRAPHQL_RESPONSE else 200, {"errors": exc.errors}, headers)
    body, ctx = await _execute(request, service, prepared, request_id)
    if ctx.pii_reads:
        principal = prepared.principal
        try:
            await write_reads(ctx.sessionmaker, principal.sub, principal.unit, request_id, ctx.pii_reads)
        except Exception:
            # Personal data never leaves without its audit record.
            log.exception("audit log write failed; answer withheld")
            return _answer(media, 500, {"errors": [errors.request_error(
                errors.INTERNAL, "the personal-data audit log could not be written; nothing was returned")]}, headers)
    return _answer(media, 200, body, headers)
