"""The secrets-guard plugin: finds credentials in text, and as a hook into the MCP
gateway's tool calls refuses arguments that carry one and redacts them from results."""
