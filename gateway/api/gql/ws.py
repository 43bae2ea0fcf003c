"""GraphQL over WebSocket (`graphql-transport-ws`, the protocol of the graphql-ws library) at `/graphql`.

The protocol's state machine — connection_init / connection_ack, ping / pong, subscribe / next / error /
complete, the init timeout (4408), subscribing before the ack (4401), a second init (4429), a duplicate
operation id (4409), an unknown message type (4400) — is Ariadne's `GraphQLTransportWSHandler`, which runs
any graphql-core schema, graphene's included. This module adds the gateway's rules around it:

- Sign-in at `connection_init`: the payload is `{"Authorization": "Bearer <token>"}`; a missing or bad token,
  or one whose unit is unknown, closes the socket with 4403 Forbidden. A client that did not offer the
  `graphql-transport-ws` subprotocol is refused at the handshake.
- At every `subscribe`, the token is checked again (it may have expired since), and the operation goes
  through the same document cache, validation and depth/cost limits as over HTTP. Only subscriptions are
  served here; queries and mutations go to `POST /graphql`. A refusal is an `error` message whose payload
  carries `extensions.code` (UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT, QUERY_TOO_COMPLEX, …).
- A message that is not a JSON object of the protocol (bad JSON, a binary frame, a subscribe without an id
  or a query) closes the socket with 4400, as the protocol asks.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from typing import Any

from ariadne.asgi.handlers import GraphQLTransportWSHandler
from graphql import GraphQLError, OperationType
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.api.auth import authenticate
from gateway.api.feed import AlertHub
from gateway.api.gql import errors
from gateway.api.gql.http import GraphQLService, RequestError
from gateway.api.gql.subscription import LiveContext
from gateway.core.auth import AuthError, Principal, bearer_token

log = logging.getLogger(__name__)

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT = timedelta(seconds=10)


class ProtocolWebSocket(WebSocket):
    """A WebSocket whose messages must be JSON objects in text frames: anything else closes it with 4400."""

    async def receive_json(self, mode: str = "text") -> Any:
        message = await self.receive()
        self._raise_on_disconnect(message)
        text = message.get("text")
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            await self.close(code=4400, reason="Invalid message: a JSON object with a type")
            raise WebSocketDisconnect(4400)
        return value


def _bad_subscribe(message: dict[str, Any]) -> str | None:
    op_id, payload = message.get("id"), message.get("payload")
    if not isinstance(op_id, str) or not op_id:
        return "subscribe needs an id"
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "subscribe needs a payload with a query"
    if payload.get("variables") is not None and not isinstance(payload["variables"], dict):
        return "variables must be an object"
    if payload.get("operationName") is not None and not isinstance(payload["operationName"], str):
        return "operationName must be a string"
    return None


class GatewayTransportWS(GraphQLTransportWSHandler):
    def __init__(self, service: GraphQLService, hub: AlertHub, app_state: Any) -> None:
        super().__init__(connection_init_wait_timeout=INIT_TIMEOUT)
        self.service, self.hub, self.app_state = service, hub, app_state
        self.configure(
            service.schema, context_value=self._context, query_parser=self._parse,
            introspection=service.settings.graphql_introspection, logger=__name__,
            error_formatter=lambda error, debug=False: errors.format_error(error),
        )

    # ----------------------------------------------------------------------------------------- sign-in

    def _principal(self, payload: Any) -> Principal:
        if not isinstance(payload, dict):
            raise AuthError('connection_init needs a payload {"Authorization": "Bearer <token>"}')
        header = next((v for k, v in payload.items() if isinstance(k, str) and k.lower() == "authorization"), None)
        if not isinstance(header, str):
            raise AuthError('connection_init needs a payload {"Authorization": "Bearer <token>"}')
        return authenticate(self.service.settings, bearer_token(header))

    async def handle_websocket_connection_init_message(self, websocket: WebSocket, message: dict[str, Any],
                                                       client_context: Any) -> None:
        if client_context.connection_init_received:
            await websocket.close(code=4429, reason="Too many initialisation requests")
            return
        client_context.connection_init_received = True
        try:
            principal = self._principal(message.get("payload"))
            jurisdiction = await self.service.units.jurisdiction_of(principal.unit)
            if jurisdiction is None:
                raise AuthError(f"the token's unit {principal.unit} is not a known org unit")
        except AuthError as exc:
            await websocket.close(code=4403, reason=f"Forbidden: {exc}"[:120])
            return
        websocket.state.payload = message.get("payload")
        websocket.state.jurisdiction = jurisdiction
        await websocket.send_json({"type": self.GQL_CONNECTION_ACK})
        client_context.connection_acknowledged = True

    # ---------------------------------------------------------------------------------------- messages

    async def handle_websocket_message(self, websocket: WebSocket, message: dict[str, Any],
                                       client_context: Any) -> None:
        if message["type"] == self.GQL_SUBSCRIBE:
            problem = _bad_subscribe(message)
            if problem:
                await websocket.close(code=4400, reason=f"Invalid message: {problem}")
                return
        await super().handle_websocket_message(websocket, message, client_context)

    async def handle_websocket_subscribe(self, websocket: WebSocket, data: Any, operation_id: str,
                                         client_context: Any) -> None:
        if client_context.connection_acknowledged and operation_id not in client_context.operations:
            refused = await self._admit(websocket, data)
            if refused:
                await websocket.send_json({"type": self.GQL_ERROR, "id": operation_id, "payload": refused})
                return
        await super().handle_websocket_subscribe(websocket, data, operation_id, client_context)

    async def _admit(self, websocket: WebSocket, data: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Why this subscribe is refused (the error message's payload), or None to run it."""
        try:
            websocket.state.principal = self._principal(websocket.state.payload)  # it may have expired since
        except AuthError as exc:
            return [errors.request_error(errors.UNAUTHENTICATED, str(exc))]
        service = self.service
        try:
            document = service.document(data["query"])
            operation = service.operation(document, data.get("operationName"))
            if operation.operation != OperationType.SUBSCRIPTION:
                return [errors.request_error(errors.BAD_USER_INPUT, "only subscriptions are served over WebSocket; "
                                             "send queries and mutations to POST /graphql")]
            service.check(document, operation, data.get("variables"))
        except RequestError as exc:
            return exc.errors
        return None

    def _parse(self, context: Any, data: dict[str, Any]) -> Any:
        try:
            return self.service.document(data["query"])  # validated and cached, as over HTTP
        except RequestError as exc:
            raise GraphQLError(exc.errors[0]["message"]) from None

    def _context(self, websocket: WebSocket, data: Any) -> LiveContext:
        service = self.service
        return LiveContext(
            websocket.state.principal, websocket.state.jurisdiction, service.settings, self.app_state.engine,
            self.app_state.sessionmaker, service.upstreams, service.units, request_id=uuid.uuid4().hex, hub=self.hub,
        )


def handler_of(app: Any) -> GatewayTransportWS:
    """The application's WebSocket handler and feed, made at the first connection."""
    state = app.state
    handler: GatewayTransportWS | None = getattr(state, "graphql_ws", None)
    if handler is None:
        service: GraphQLService = state.graphql
        hub = AlertHub(state.engine, state.sessionmaker, service.units)
        state.alert_hub = hub
        handler = state.graphql_ws = GatewayTransportWS(service, hub, state)
    return handler


class GraphQLWebSocketEndpoint:
    """The ASGI endpoint of WebSocket connections to /graphql."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = ProtocolWebSocket(scope, receive, send)
        if PROTOCOL not in scope.get("subprotocols", []):
            await websocket.close(code=1002)  # before accepting: the handshake is refused (HTTP 403)
            return
        await handler_of(scope["app"]).handle_websocket(websocket)
