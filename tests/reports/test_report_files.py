"""`scheduler.py report --out DIR` against the real node: the HTML and PDF it writes."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch

from alerts.model import Alert, wave_id_for
from alerts.state import AlertStateStore, OutboxEntry
from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import BrandSentiment, Mention, Sentiment
from daemon.cli import main
from store.setup import install_templates
from store.writer import BulkWriter

START = datetime(2026, 11, 9, tzinfo=UTC)
HOSTILE = "<script>alert('pwned')</script> Acme broke my phone & my heart"


def _mention(sid: str, when: datetime, brand: str, label: str, text: str,
             reach: int | None = None, author: str | None = None) -> Mention:
    probs = {"negative": 0.05, "neutral": 0.05, "positive": 0.05}
    probs[label] = 0.9
    verdict = {"label": label, "confidence": 0.9, **probs}
    return Mention(source="reddit", source_id=sid, source_name="reddit", text=text,
                   url=f"https://example.test/{sid}", language="en", created_at=when,
                   collected_at=when, brands=[brand], author=author or f"u{sid}",
                   author_reach=reach, sentiment=Sentiment(model="m", **verdict),
                   brand_sentiments=[BrandSentiment(brand=brand, source="post", **verdict)])


@pytest.fixture(scope="module")
def config_file(es_node, es_client: Elasticsearch, es_cfg_module: ElasticsearchConfig,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    install_templates(es_client, es_cfg_module)
    mentions = [
        _mention(f"a{i}", START + timedelta(hours=5 * i), "Acme", "negative",
                 f"Acme battery drains overnight again, day {i}", reach=10 * i)
        for i in range(20)
    ] + [
        _mention("big", START + timedelta(days=2), "Acme", "negative", HOSTILE, reach=90_000,
                 author="<b>loud</b>"),
        _mention("fan", START + timedelta(days=3), "Acme", "positive", "Acme support was great",
                 reach=5_000, author="fan"),
    ] + [_mention(f"g{i}", START + timedelta(hours=7 * i), "Globex", "positive", "Globex ok")
         for i in range(10)] + [
        _mention(f"p{i}", START - timedelta(days=1, hours=i), "Acme", "positive", "Acme rocks")
        for i in range(1, 11)
    ]  # fmt: skip
    with BulkWriter(es_client, es_cfg_module, refresh=True) as writer:
        assert writer.write(mentions).ok
    # one alert the engine raised in the period, as its outbox records it
    store = AlertStateStore(es_client, es_cfg_module.index_prefix)
    store.install()
    began = START + timedelta(days=2)
    alert = Alert(kind="started", brand="Acme", wave_id=wave_id_for("Acme", began),
                  interval_start=began, interval_end=began + timedelta(minutes=15),
                  observed=14, expected=2.5, created_at=began + timedelta(minutes=16))
    assert store.enqueue(OutboxEntry(alert=alert, status="delivered",
                                     created_at=alert.created_at))
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_text(yaml.safe_dump({
        "brands": [{"name": "Acme"}, {"name": "Globex", "own": False}],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": es_cfg_module.index_prefix,
                          "spool_dir": str(path.parent / "spool")},
    }), encoding="utf-8")  # fmt: skip
    return path


def _report(config_file: Path, out: Path, *extra: str) -> int:
    return main(["report", "--config", str(config_file), "--period", "week",
                 "--to", "2026-11-16", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def written(config_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports") / "new" / "dir"  # created by the command
    assert _report(config_file, out) == 0
    return out


def test_html_is_self_contained_with_the_figures(written: Path) -> None:
    (html_path,) = written.glob("*.html")
    assert html_path.name == "brandpulse-acme-2026-11-09-7d.html"
    page = html_path.read_text(encoding="utf-8")
    # headline figures: 22 mentions against 10 the week before (+120 %), share 22/32
    mentions = re.search(r'data-figure="mentions">.*?</div></div>', page, re.S).group(0)
    assert ">22<" in mentions and "before 10" in mentions and "+120%" in mentions
    assert "68.8%" in page  # share of voice 22 / 32
    # two charts, embedded as PNG; nothing is fetched from elsewhere
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    assert all(base64.b64decode(i).startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    assert not re.search(r'(src|href)="(?!data:|https://example\.test/)', page)
    assert "<link" not in page and "<style>" in page
    # top posts, authors by reach, the period's alert
    assert "battery drains overnight" in page and "Acme support was great" in page
    assert "90,000" in page and "5,000" in page
    assert "started (volume)" in page and "14 / 2.5" in page


def test_html_escapes_a_hostile_post(written: Path) -> None:
    page = next(written.glob("*.html")).read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;loud&lt;/b&gt;" in page and "<b>loud</b>" not in page
    assert "phone &amp; my heart" in page


def test_pdf_opens(written: Path) -> None:
    (pdf_path,) = written.glob("*.pdf")
    data = pdf_path.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert len(data) > 5_000
    # headline page, charts page, posts page
    pages = re.findall(rb"/Type\s*/Page[^s]", data)
    assert len(pages) >= 3


def test_chinese_labels(config_file: Path, tmp_path: Path) -> None:
    assert _report(config_file, tmp_path, "--language", "zh", "--no-themes") == 0
    page = next(tmp_path.glob("*.html")).read_text(encoding="utf-8")
    assert '<html lang="zh">' in page and "品牌报告" in page and "声量占比" in page


def test_alerts_not_queryable_is_said(config_file: Path, es_client: Elasticsearch) -> None:
    from brandpulse.config import load_config
    from reports.full import period_alerts
    from reports.period import Period

    config = load_config(config_file)
    period = Period(START, START + timedelta(days=7))
    found, note = period_alerts(es_client, config, "Acme", period, now=START + timedelta(days=8))
    assert [a.kind for a in found] == ["started"] and note is None
    # a prefix whose alert engine never ran has no state index: "not available", not "none"
    other = config.model_copy(update={"elasticsearch": config.elasticsearch.model_copy(
        update={"index_prefix": config.elasticsearch.index_prefix + "-noalerts"})})
    found, note = period_alerts(es_client, other, "Acme", period, now=START + timedelta(days=8))
    assert found is None and "no alert state index" in note
    # a period older than the engine keeps delivered alerts: said, not hidden
    _, note = period_alerts(es_client, config, "Acme", period, now=START + timedelta(days=30))
    assert "pruned" in note


def test_unwritable_out_is_a_clear_error(config_file: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert _report(config_file, blocker / "reports") == 1
    err = capsys.readouterr().err
    assert "cannot write the report to" in err and str(blocker / "reports") in err
    assert "Traceback" not in err


def test_slack_gets_the_summary_and_the_charts(config_file: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from sandbox.slack import SlackSandbox

    with SlackSandbox() as slack:
        cfg = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        cfg["slack"] = {"token": slack.token, "channel": "#brand-alerts",
                        "base_url": slack.base_url}
        with_slack = tmp_path / "config.yaml"
        with_slack.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        assert _report(with_slack, tmp_path / "out", "--slack") == 0
        summary, shared = slack.messages
        files = slack.files
    assert "2 chart(s) uploaded" in capsys.readouterr().out
    # the summary: headline figures, the hostile post escaped, the files named
    texts = "\n".join(summary.block_texts())
    assert summary.blocks[0]["type"] == "header" and "Acme" in summary.blocks[0]["text"]["text"]
    assert "*Mentions*\n22 (before 10, change +120%)" in texts
    assert "&lt;script&gt;" in texts and "<script>" not in texts
    assert "started 1" in texts and "brandpulse-acme-2026-11-09-7d.pdf" in texts
    # the charts: two PNGs shared into the summary's thread
    assert [f.filename for f in files] == ["share_of_voice.png", "sentiment.png"]
    assert all(f.data.startswith(b"\x89PNG") and f.channels == (slack.channel,) for f in files)
    assert shared.thread_ts == summary.ts and len(shared.payload["files"]) == 2
    assert {f.title for f in files} == {"Share of voice by day", "Sentiment by day"}


def test_slack_needs_a_bot_token(config_file: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert _report(config_file, tmp_path, "--slack", "--no-themes") == 1
    out, err = capsys.readouterr()
    assert "needs slack.token and slack.channel" in err
    # the files were written and named before the post failed, and stay
    printed = [Path(line) for line in out.splitlines()]
    assert [p.name for p in printed] == ["brandpulse-acme-2026-11-09-7d.html",
                                         "brandpulse-acme-2026-11-09-7d.pdf"]
    assert all(p.is_file() for p in printed)


def test_publish_writes_announces_then_posts(config_file: Path, es_client: Elasticsearch,
                                             tmp_path: Path) -> None:
    """`publish_report`'s order: every file written and announced, then the one post."""
    from brandpulse.config import load_config
    from reports.period import Period
    from reports.publish import publish_report
    from store.setup import alias_name

    config = load_config(config_file)
    events: list[str] = []

    def refusing_post(report: object, charts: dict[str, bytes], files: list[str]) -> None:
        events.append(f"post {sorted(charts)} {files}")
        # what it was handed is on disk already
        assert all((tmp_path / name).is_file() for name in files)
        raise RuntimeError("channel down")

    with pytest.raises(RuntimeError, match="channel down"):
        publish_report(es_client, config, alias_name(config.elasticsearch.index_prefix),
                       "Acme", Period(START, START + timedelta(days=7)), tmp_path,
                       post=refusing_post, chart_files=True, themes=False,
                       announce=lambda path: events.append(path.name))
    stem = "brandpulse-acme-2026-11-09-7d"
    assert events == [f"{stem}.html", f"{stem}.pdf", f"{stem}-share_of_voice.png",
                      f"{stem}-sentiment.png",
                      f"post ['sentiment', 'share_of_voice'] {[stem + '.html', stem + '.pdf']}"]
    assert (tmp_path / f"{stem}-sentiment.png").read_bytes().startswith(b"\x89PNG")
