"""Input a document can carry that the schema's types let through but the gateway cannot hold
(interfaces.md 1.1: no input makes an internal error).

- String literals are held to records.md 1.1 like every other input (no U+0000, no unpaired surrogate),
  and float literals must be finite: `TextAndNumbersRule`, a validation rule, so that such a document is
  refused before it runs (BAD_USER_INPUT). Variables are checked where the request body is parsed.
- An explicit `null` for an argument that has a default (`complaints(first: null)`) means that default:
  `null_means_default` wraps the resolvers of such fields once, when the schema is built.
- `DateTime` and `Date` arguments must fall between 1900 and 2199 (`gateway.core.time`), like every instant
  the gateway reads: `bound_dates` wraps the two scalars' parsers once, when the schema is built.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from graphql import (
    FloatValueNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    StringValueNode,
    Undefined,
    ValidationRule,
    default_field_resolver,
    is_non_null_type,
)

from gateway.api.gql.errors import BAD_USER_INPUT
from gateway.core.jsontext import text_problem
from gateway.core.time import check_date, check_instant


class TextAndNumbersRule(ValidationRule):
    """Refuses string literals with U+0000 or an unpaired surrogate, and float literals that overflow."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        reason = text_problem(node.value)
        if reason is not None:
            self.report_error(GraphQLError(f"a string {reason}", node, extensions={"code": BAD_USER_INPUT}))

    def enter_float_value(self, node: FloatValueNode, *_args: Any) -> None:
        if not math.isfinite(float(node.value)):
            self.report_error(GraphQLError(f"the number {node.value[:40]} is not finite", node,
                                           extensions={"code": BAD_USER_INPUT}))


def null_means_default(schema: GraphQLSchema) -> None:
    """For every field with nullable arguments that have a non-null default, hand the resolver the default
    when the caller sent an explicit null. Resolvers then never see None where the schema promised a value."""
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field in named.fields.values():
            defaults = {
                arg.out_name or name: arg.default_value
                for name, arg in field.args.items()
                if arg.default_value is not Undefined and arg.default_value is not None
                and not is_non_null_type(arg.type)
            }
            if defaults:
                field.resolve = _with_defaults(field.resolve or default_field_resolver, defaults)


def _with_defaults(resolve: Any, defaults: dict[str, Any]) -> Any:
    def resolver(root: Any, info: Any, **args: Any) -> Any:
        for name, value in defaults.items():
            if name in args and args[name] is None:
                args[name] = value
        return resolve(root, info, **args)

    return resolver


def bound_dates(schema: GraphQLSchema) -> None:
    """Make the `DateTime` and `Date` scalars refuse values outside 1900..2199 (a coercion error, so
    BAD_USER_INPUT for a variable, a validation error for a literal) instead of overflowing later."""
    for name, check in (("DateTime", _bounded_instant), ("Date", check_date)):
        scalar = schema.type_map.get(name)
        if isinstance(scalar, GraphQLScalarType):
            scalar.parse_value = _checked(scalar.parse_value, check)  # type: ignore[method-assign]
            scalar.parse_literal = _checked_literal(scalar.parse_literal, check)  # type: ignore[method-assign]


def _bounded_instant(value: datetime) -> datetime:
    if value.tzinfo is None:  # naive: the resolver says "give an offset"; only the year is checked here
        check_date(value.date())
        return value
    return check_instant(value)


def _checked(parse: Any, check: Any) -> Any:
    def parse_value(value: Any) -> Any:
        parsed = parse(value)
        try:
            return check(parsed)
        except ValueError as exc:
            raise GraphQLError(str(exc)) from None

    return parse_value


def _checked_literal(parse: Any, check: Any) -> Any:
    def parse_literal(node: Any, variables: Any = None) -> Any:
        parsed = parse(node, variables)
        try:
            return check(parsed)
        except ValueError as exc:
            raise GraphQLError(str(exc)) from None

    return parse_literal
