"""The /docs page: Swagger UI served from the installed package, pointed at /openapi.json."""

from __future__ import annotations

from pathlib import Path


def docs_static_dir() -> Path:
    """Swagger UI 5 as shipped by the swagger-ui-py package: the docs page loads nothing from outside."""
    import swagger_ui  # imported when the app is built, not by every gateway import

    return Path(swagger_ui.__file__).parent / "static"


DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>salesops API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", persistAuthorization: true});</script>
</body></html>
"""
