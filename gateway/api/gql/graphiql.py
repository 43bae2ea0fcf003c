"""The in-browser IDE served to a browser's GET /graphql without a query.

GraphiQL (2.x, with React 17) is served from the installed PyPI wheel `graphene-django-graphiql-static`, pinned
in pyproject.toml: its static folder holds the UMD bundles and a stylesheet with the fonts inlined, so the page
works on an intranet with no internet. Only the files are used; the package's Django views are not imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

PACKAGE = "graphene_django_graphiql_static"
STATIC_URL = "/static/graphiql"


def assets_dir() -> Path:
    """The wheel's folder of GraphiQL assets (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {PACKAGE} package is not installed: pip install -e . installs it")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / PACKAGE


def mount(app: FastAPI) -> None:
    """Serve the GraphiQL assets under /static/graphiql/."""
    app.mount(STATIC_URL, StaticFiles(directory=assets_dir()), name="graphiql-assets")


GRAPHIQL_HTML = f"""<!doctype html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8" />
  <title>12315 gateway · GraphiQL</title>
  <style>html, body, #graphiql {{ height: 100%; margin: 0; overflow: hidden; width: 100%; }}</style>
  <link rel="stylesheet" href="{STATIC_URL}/graphiql.min.css" />
  <script src="{STATIC_URL}/react.production.min.js"></script>
  <script src="{STATIC_URL}/react-dom.production.min.js"></script>
  <script src="{STATIC_URL}/graphiql.min.js"></script>
</head>
<body>
  <div id="graphiql">正在加载 GraphiQL… Loading GraphiQL…</div>
  <script>
    const fetcher = GraphiQL.createFetcher({{ url: window.location.pathname }});
    ReactDOM.render(
      React.createElement(GraphiQL, {{
        fetcher,
        defaultHeaders: '{{"Authorization": "Bearer <token from gateway token>"}}',
        defaultEditorToolsVisibility: "headers",
        headerEditorEnabled: true,
      }}),
      document.getElementById("graphiql"),
    );
  </script>
</body>
</html>
"""
