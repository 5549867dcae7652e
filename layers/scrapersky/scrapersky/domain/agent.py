"""Who the service says it is: the User-Agent of every request, and the agent a site's robots.txt is read for."""

USER_AGENT = "ScraperSky/0.1 (+https://github.com/scrapersky)"
