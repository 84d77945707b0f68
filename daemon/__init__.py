"""The background service: runs crawl -> enrich -> index -> detect -> notify on a schedule."""
