"""The gateway's MCP front: the ``/mcp`` endpoint and the upstream MCP servers behind it.

Upstream side: :mod:`.spec` (what a server is), :mod:`.upstream` (one server's
connection, tools and calls), :mod:`.federation` (all of them, under exposed names).
"""
