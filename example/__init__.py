"""The example: an MCP server protected by ``oauth_server`` and an MCP SDK client for it.

``python -m example.server`` starts the server (FastAPI + the MCP SDK's ``MCPServer``) and
``python -m example.client`` signs in to it. The example reads environment variables (see
``example.settings``); the library itself never does.
"""
