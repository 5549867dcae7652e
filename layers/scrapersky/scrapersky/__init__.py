"""ScraperSky shared package: domain, ports, adapters and the composition root."""
