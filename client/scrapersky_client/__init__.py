"""A small typed Python client of the ScraperSky HTTP API (contract: shared/API.md)."""

from scrapersky_client.client import ApiError, Client

__all__ = ["ApiError", "Client"]
