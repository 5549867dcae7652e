"""The HTTP API: routers per function and the one place where errors become HTTP answers."""
