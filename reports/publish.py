"""Writing reports out: the files of `scheduler.py report --out DIR` and of a scheduled run.

`output_dir` checks the directory before any figure is computed, so an unwritable
`--out` (or `reports.output_dir`) fails at once with a message naming it, not after
a minute of aggregations. `write_report` writes `<stem>.html` and `<stem>.pdf` for one
`FullReport` (`reports.render.file_stem`: brand, period start, length).

`publish_report` is the whole job of one brand's report, shared by `scheduler.py report
--out DIR [--slack]`, the daemon's scheduled reports and `make demo`: build, write, post.
Posting is behind a small callable (`reports.slack_message.slack_poster` makes the Slack
one) so this module stays free of any channel (tests/reports/test_report_layering.py).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from reports.full import FullReport

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from brandpulse.config import Config
    from reports.labels import Language
    from reports.period import Period

Receipt = TypeVar("Receipt")


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

    @property
    def documents(self) -> list[Path]:
        """The HTML and, when one was written, the PDF: the files a summary names."""
        return [p for p in (self.html, self.pdf) if p is not None]


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


Poster = Callable[[FullReport, dict[str, bytes], list[str]], Receipt]
"""Posts a written report: `(report, charts as name -> PNG, names of the files written)`,
returning the channel's receipt (e.g. `reports.slack_message.Posted`); raises on failure."""


@dataclass(frozen=True)
class Published(Generic[Receipt]):
    """What `publish_report` did for one brand."""

    report: FullReport
    written: Written
    chart_files: tuple[Path, ...]  # the chart PNGs as files, when asked for
    posted: Receipt | None  # the poster's receipt; None when nothing was to be posted

    @property
    def files(self) -> list[Path]:
        """Every file written, in the order HTML, PDF, charts."""
        return self.written.documents + list(self.chart_files)


def publish_report(
    client: Elasticsearch, config: Config, index: str, brand: str, period: Period,
    out_dir: Path, *, post: Poster[Receipt] | None = None, chart_files: bool = False,
    announce: Callable[[Path], object] | None = None,
    language: Language | None = None, time_zone: str = "UTC", exclude_duplicates: bool = True,
    themes: bool = True, now: datetime | None = None,
) -> Published[Receipt]:
    """Build the report of `brand` over `period`, write its files, then post it.

    Writes into `out_dir` (already checked by `output_dir`) `<stem>.html` (self-contained,
    charts inline) and `<stem>.pdf`, and with `chart_files` also each chart as
    `<stem>-<chart>.png` beside them, to look at without a browser; `announce` is called
    with each file's path (HTML, PDF, charts) once all are written and before anything is
    posted, so a command shows what it wrote even when the post then fails. Then, with `post`,
    calls `post(report, charts, [html name, pdf name])` once: the summary names the files
    and the chart PNGs are uploaded (the Slack poster), and its receipt is returned in
    `Published.posted`. The files are written before anything is posted, so a poster that
    fails leaves them in place; its exception propagates (callers decide whether one
    brand's failed post stops the others). `language` defaults to `reports.language`;
    `time_zone`, `exclude_duplicates`, `themes` and `now` go to `build_report` as given.
    Raises `ReportOutputError` when a file cannot be written.
    """
    from reports.full import build_report

    report = build_report(client, config, index, brand, period,
                          language=language or config.reports.language, time_zone=time_zone,
                          exclude_duplicates=exclude_duplicates, themes=themes, now=now)
    written = write_report(report, out_dir)
    pngs: list[Path] = []
    if chart_files:
        for name, data in written.charts.items():
            path = out_dir / f"{written.html.stem}-{name}.png"
            try:
                path.write_bytes(data)
            except OSError as exc:
                raise ReportOutputError(
                    f"cannot write the report to {str(out_dir)!r}: {exc.strerror or exc}"
                ) from None
            pngs.append(path)
    if announce is not None:
        for path in written.documents + pngs:
            announce(path)
    posted = None
    if post is not None:
        posted = post(report, written.charts, [p.name for p in written.documents])
    return Published(report=report, written=written, chart_files=tuple(pngs), posted=posted)
