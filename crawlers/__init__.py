"""Scrapy project of BrandPulse: spiders that turn source APIs into `Mention`s.

Layout follows Scrapy's roles: `spiders/` (one spider per source type on top of
`spiders/base.MentionSpider`), `middlewares.py` (rate limits, fault accounting),
`pipelines.py` (duplicates, output), `extensions.py` (per-source stats),
`runner.py` (programmatic crawls in a child process for the daemon).
"""
