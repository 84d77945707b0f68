"""Writing reports out: the files of `scheduler.py report --out DIR` and of a scheduled run.

`output_dir` checks the directory before any figure is computed, so an unwritable
`--out` (or `reports.output_dir`) fails at once with a message naming it, not after
a minute of aggregations. `write_report` writes `<stem>.html` and `<stem>.pdf` for one
`FullReport` (`reports.render.file_stem`: brand, period start, length).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reports.full import FullReport


class ReportOutputError(RuntimeError):
    """The report's directory cannot be created or written to."""


def output_dir(path: str | Path) -> Path:
    """`path`, created if missing, after proving a file can be written in it."""
    out = Path(path).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        # root may write where the mode bits say no, and a read-only mount refuses
        # only at write time: try a real file rather than trusting os.access
        fd, probe = tempfile.mkstemp(prefix=".brandpulse-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ReportOutputError(f"cannot write the report to {str(out)!r}: {reason}") from None
    return out


@dataclass(frozen=True)
class Written:
    html: Path
    pdf: Path | None
    charts: dict[str, bytes]  # the PNGs, for a Slack upload


def write_report(report: FullReport, out_dir: Path, *, pdf: bool = True) -> Written:
    """Write the HTML (and PDF) of `report` into `out_dir` (see `output_dir`)."""
    from reports.render import charts_png, write_html, write_pdf

    charts = charts_png(report)
    try:
        html_path = write_html(report, out_dir, charts)
        pdf_path = write_pdf(report, out_dir) if pdf else None
    except OSError as exc:
        raise ReportOutputError(
            f"cannot write the report to {str(out_dir)!r}: {exc.strerror or exc}"
        ) from None
    return Written(html=html_path, pdf=pdf_path, charts=charts)
