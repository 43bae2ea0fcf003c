"""Depth and cost of an operation, measured before it runs (GATEWAY_MAX_DEPTH, GATEWAY_MAX_COST).

Every field costs 1 plus what it selects; a field with `first` multiplies what its list items select by
the page size asked for (its default when not given), and any other list field by DEFAULT_LIST_SIZE.
Fragment spreads and aliases count as the fields they stand for: each fragment is measured once and
memoised, so a fragment bomb is measured in linear time, and costs add up with saturation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.execution.values import get_argument_values

from gateway.api.gql import errors
from gateway.api.gql.listing import MAX_FIRST

DEFAULT_LIST_SIZE = 5  # what a list without `first` (events, cases, children, rows) is assumed to hold
_CAP = 10**12  # saturation: exponential documents must not build huge integers


@dataclass(frozen=True, slots=True)
class Measure:
    depth: int
    cost: int


def _is_list(field: GraphQLField) -> bool:
    t: Any = field.type
    if isinstance(t, GraphQLNonNull):
        t = t.of_type
    return isinstance(t, GraphQLList)


class _Meter:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 variables: dict[str, Any]) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.memo: dict[str, Measure] = {}
        self.in_progress: set[str] = set()
        self.uses_variables = False  # a page size came from a variable: the measure holds for these only

    def selection_set(self, node: SelectionSetNode, parent: Any, page: int | None) -> Measure:
        depth = cost = 0
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                m = self.field(sel, parent, page)
            elif isinstance(sel, InlineFragmentNode):
                cond = self.schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                m = self.selection_set(sel.selection_set, cond or parent, page)
            elif isinstance(sel, FragmentSpreadNode):
                m = self.fragment(sel.name.value, page)
            else:  # pragma: no cover - no other selection kinds exist
                continue
            depth = max(depth, m.depth)
            cost = min(_CAP, cost + m.cost)
        return Measure(depth, cost)

    def fragment(self, name: str, page: int | None) -> Measure:
        key = f"{name}:{page}"
        if key in self.memo:
            return self.memo[key]
        frag = self.fragments.get(name)
        if frag is None or key in self.in_progress:  # validation rejects both; stay safe regardless
            return Measure(0, 0)
        self.in_progress.add(key)
        parent = self.schema.get_type(frag.type_condition.name.value)
        m = self.selection_set(frag.selection_set, parent, page)
        self.in_progress.discard(key)
        self.memo[key] = m
        return m

    def field(self, node: FieldNode, parent: Any, page: int | None) -> Measure:
        name = node.name.value
        if name.startswith("__"):  # introspection and __typename are free
            return Measure(0, 0)
        fields = getattr(parent, "fields", None)
        definition: GraphQLField | None = fields.get(name) if fields else None
        if definition is None:
            return Measure(0, 0)
        if node.selection_set is None:
            return Measure(1, 1)
        named = get_named_type(definition.type)
        if "first" in definition.args:
            first = self.first(definition, node)
            inner = self.selection_set(node.selection_set, named, first)
            return Measure(1 + inner.depth, min(_CAP, 1 + inner.cost))
        inner = self.selection_set(node.selection_set, named, None)
        size = (page if page is not None else DEFAULT_LIST_SIZE) if _is_list(definition) else 1
        return Measure(1 + inner.depth, min(_CAP, 1 + size * inner.cost))

    def first(self, definition: GraphQLField, node: FieldNode) -> int:
        if any(a.name.value == "first" and isinstance(a.value, VariableNode) for a in node.arguments or ()):
            self.uses_variables = True
        try:
            args = get_argument_values(definition, node, self.variables)
        except Exception:  # a bad argument is for validation/execution to report with its own message
            return MAX_FIRST
        first = args.get("first")
        if first is None:  # an explicit null means the default (inputs.null_means_default)
            default = definition.args["first"].default_value
            first = default if isinstance(default, int) else MAX_FIRST
        if not 0 <= first <= MAX_FIRST:
            raise errors.bad_input(f"first must be between 0 and {MAX_FIRST}, got {first}", argument="first")
        return int(first)


def measure(schema: GraphQLSchema, document: Any, operation: OperationDefinitionNode,
            variables: dict[str, Any]) -> tuple[Measure, bool]:
    """The operation's depth and cost, and whether they depend on the variables' values."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    root = schema.get_root_type(operation.operation)
    meter = _Meter(schema, fragments, variables)
    return meter.selection_set(operation.selection_set, root, None), meter.uses_variables


def check(schema: GraphQLSchema, document: Any, operation: OperationDefinitionNode, variables: dict[str, Any],
          max_depth: int, max_cost: int, cache: dict[Any, Measure] | None = None) -> Measure:
    """Raise QUERY_TOO_COMPLEX over a limit. `cache` keeps the measures that hold whatever the variables."""
    key = (id(document), id(operation))
    m = cache.get(key) if cache is not None else None
    if m is None:
        m, per_variables = measure(schema, document, operation, variables)
        if cache is not None and not per_variables:
            cache[key] = m
    if m.depth > max_depth:
        raise errors.GatewayError(
            errors.QUERY_TOO_COMPLEX, f"query depth {m.depth} is over the limit of {max_depth}",
            depth=m.depth, maxDepth=max_depth,
        )
    if m.cost > max_cost:
        raise errors.GatewayError(
            errors.QUERY_TOO_COMPLEX, f"query cost {m.cost} is over the limit of {max_cost}",
            cost=m.cost, maxCost=max_cost,
        )
    return m
