"""The kind seam: one processor per kind of item (page today; sitemap and profile to come)."""
