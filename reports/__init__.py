"""Reports and insight: share of voice, sentiment trend and complaint themes.

`reports.share_of_voice` computes a brand's figures against its competitors with
Elasticsearch aggregations; `reports.themes` groups a brand's negative mentions into
labelled themes. Both return plain frozen dataclasses, which the text/JSON output of
`scheduler.py report` (and, later, the HTML/PDF/Slack report) render. See docs/reports.md.
"""
