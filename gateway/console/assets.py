"""The console's page and assets: the files of ``static/``, read once, kept in memory.

Only files of the directory are served, by name (no sub-directories, no path walking);
the content type comes from the suffix.
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["PAGE", "SECURITY_HEADERS", "asset"]

#: The page itself, served at ``/console``.
PAGE = "index.html"
_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
}
#: Only the console's own scripts, styles and API: nothing from elsewhere, no inline code.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", _POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-cache"),
)


@functools.cache
def asset(name: str) -> tuple[bytes, bytes] | None:
    """``(content type, content)`` of the file ``name`` of ``static/``, or None."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    content_type = _TYPES.get(suffix)
    if content_type is None or "/" in name or name.startswith("."):
        return None
    found = resources.files(__package__) / "static" / name
    if not found.is_file():
        return None
    return content_type, found.read_bytes()
