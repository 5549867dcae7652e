"""events Lambda: wiring only; the entry point lives in the shared layer (scrapersky.entrypoints)."""

from scrapersky.entrypoints import events_handler as lambda_handler

__all__ = ["lambda_handler"]
