"""The ``/docs`` page: Swagger UI rendering ``/openapi.json``, from installed assets.

The assets come from the ``swagger-ui-py`` package (Swagger UI 5, which renders
OpenAPI 3.1); nothing is loaded from a CDN. Only the few files the page uses are served,
read once and kept in memory.
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["ASSET_PREFIX", "asset", "page"]

ASSET_PREFIX = "/docs/static/"
_ASSETS = {
    "swagger-ui.css": b"text/css; charset=utf-8",
    "index.css": b"text/css; charset=utf-8",
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": b"text/javascript; charset=utf-8",
    "favicon-32x32.png": b"image/png",
    "favicon-16x16.png": b"image/png",
}
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{prefix}swagger-ui.css">
  <link rel="stylesheet" href="{prefix}index.css">
  <link rel="icon" type="image/png" href="{prefix}favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{prefix}swagger-ui-bundle.js"></script>
  <script src="{prefix}swagger-ui-standalone-preset.js"></script>
  <script>
    window.onload = function () {{
      window.ui = SwaggerUIBundle({{
        url: "/openapi.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout"
      }});
    }};
  </script>
</body>
</html>
"""


def page(title: str) -> bytes:
    """The HTML of the docs page."""
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _PAGE.format(title=escaped, prefix=ASSET_PREFIX).encode()


@functools.cache
def asset(name: str) -> tuple[bytes, bytes] | None:
    """``(content type, content)`` of one asset, or ``None`` if it is not one."""
    content_type = _ASSETS.get(name)
    if content_type is None:
        return None
    return content_type, (resources.files("swagger_ui") / "static" / name).read_bytes()
