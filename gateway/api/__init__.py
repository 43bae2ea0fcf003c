"""The HTTP surface: the FastAPI application (`app`), signing callers in (`auth`), the signed push
(`ingest`), the KPI report download (`reports`), the evaluators' page (`reports_page`) and the GraphQL
gateway (`gql`).

Handlers and resolvers parse, authorise and call a domain function. May import every domain package and
`gateway.core`; nothing but `gateway.cli` imports it.
"""
