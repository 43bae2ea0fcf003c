"""The schema: built once per process; `sdl()` is what `gateway schema` prints."""

from __future__ import annotations

from functools import lru_cache

import graphene
from graphql import GraphQLSchema, print_schema

from gateway.api.gql.inputs import bound_dates, null_means_default
from gateway.api.gql.mutations import Mutation
from gateway.api.gql.query import Query
from gateway.api.gql.subscription import Subscription


@lru_cache(maxsize=1)
def build_schema() -> graphene.Schema:
    schema = graphene.Schema(query=Query, mutation=Mutation, subscription=Subscription)
    null_means_default(schema.graphql_schema)
    bound_dates(schema.graphql_schema)
    return schema


def graphql_schema() -> GraphQLSchema:
    return build_schema().graphql_schema


def sdl() -> str:
    return print_schema(graphql_schema()) + "\n"
