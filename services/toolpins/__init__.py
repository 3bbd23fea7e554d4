"""The tool-pins plugin: pins the definitions of an approved MCP server's tools and, as a
hook into the gateway's listings, hides a tool whose definition changed since (a "rug
pull") until an admin approves the server again."""
