#!/usr/bin/env python3
"""BrandPulse's entry point: `python scheduler.py <subcommand>`.

`run` starts the background service (APScheduler jobs: a crawl per source, the
alert check, housekeeping); the other subcommands are what a team does by hand.
`python scheduler.py --help` lists them. The code lives in the `daemon` package.
"""

from __future__ import annotations

import sys

from daemon.cli import main

if __name__ == "__main__":
    sys.exit(main())
