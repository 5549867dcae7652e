"""Sitemaps, the pure part: discovery from robots.txt, a streaming document reader, the counting rules of one item
and the options. No I/O here: the sitemap processor fetches, this package reads and counts."""
