"""The renderers on a hand-built report (no Elasticsearch): Chinese text, empty sections."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import pytest

from brandpulse.mention import Mention
from reports.full import FullReport
from reports.period import Period
from reports.render import to_html, to_pdf
from reports.share_of_voice import BrandFigures, SentimentCounts, ShareOfVoice, TrendPoint
from reports.summary import BrandInsight

START = datetime(2026, 11, 9, tzinfo=UTC)


def _report(language: str = "zh") -> FullReport:
    period = Period(START, START + timedelta(days=7))
    trend = tuple(TrendPoint(START + timedelta(days=d), SentimentCounts(3, 2, 0, 1, 0))
                  for d in range(7))
    brand = BrandFigures(brand="小米", counts=SentimentCounts(21, 14, 0, 7, 0),
                         previous=SentimentCounts(0), share_of_voice=1.0,
                         previous_share_of_voice=None, trend=trend)
    sov = ShareOfVoice(period=period, exclude_duplicates=True, trend_interval="day",
                       brands=(brand,))
    post = Mention(source="weibo", source_id="1", source_name="weibo", text="小米手机电池太差了",
                   created_at=START, brands=["小米"], author="用户", author_reach=500)
    return FullReport(insight=BrandInsight("小米", sov, None), negative_posts=(post,),
                      positive_posts=(), authors=(), alerts=(), alerts_note=None,
                      time_zone="Asia/Shanghai", language=language,  # type: ignore[arg-type]
                      generated_at=START + timedelta(days=8))


def test_chinese_report_renders_without_glyph_warnings() -> None:
    report = _report()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing-glyph warning would fail here
        pdf = to_pdf(report)
        page = to_html(report)
    assert pdf.startswith(b"%PDF-")
    assert "小米手机电池太差了" in page and "用户" in page and "本时段无告警。" in page
    # no previous mentions: the change is "–", not a division by zero
    assert "上期 0 · 变化 –" in page
    # the period is shown in the report's zone: Shanghai is UTC+8
    assert "2026-11-09 08:00 → 2026-11-16 08:00 (Asia/Shanghai)" in page


def test_a_day_report_has_hourly_charts() -> None:
    from reports.charts import chart_title_key, sentiment_chart

    week = _report("en")
    period = Period(START, START + timedelta(days=1))
    trend = tuple(TrendPoint(START + timedelta(hours=h), SentimentCounts(1, 1)) for h in range(24))
    focus = BrandFigures(brand="Acme", counts=SentimentCounts(24, 24), previous=SentimentCounts(),
                         share_of_voice=1.0, previous_share_of_voice=None, trend=trend)
    day = ShareOfVoice(period=period, exclude_duplicates=True, trend_interval="hour",
                       brands=(focus,))
    assert chart_title_key("sentiment", day) == "sentiment_chart_hourly"
    assert chart_title_key("share_of_voice", week.insight.share_of_voice) == "sov_chart"
    ax = sentiment_chart(day, "en", "Asia/Shanghai").axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[:3] == ["08:00", "11:00", "14:00"] and len(ticks) == 8  # local hours
    assert ax.get_title() == "Sentiment by hour: Acme"


def _glyph_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_chinese_text_is_drawn_with_an_installed_cjk_font() -> None:
    """With a CJK font installed (CI installs fonts-wqy-microhei), charts and the PDF draw
    Chinese brand names, labels and posts with it: matplotlib warns "Glyph ... missing
    from font(s)" for every character no font in the fallback list has, and no such
    warning may come, in a Chinese report or in an English one naming a Chinese brand."""
    from reports.charts import chart_language, cjk_font
    from reports.render import charts_png

    if cjk_font() is None:
        pytest.skip("no font with Chinese characters installed (Debian: apt-get install "
                    "fonts-wqy-microhei; .ci/run installs it when it runs as root)")
    for language in ("zh", "en"):
        report = _report(language)
        assert chart_language(language) == language  # Chinese labels are drawn in Chinese
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            charts = charts_png(report)
            assert all(data.startswith(b"\x89PNG") for data in charts.values())
            assert to_pdf(report).startswith(b"%PDF-")
        assert _glyph_warnings(caught) == [], language


def test_without_a_cjk_font_glyph_warnings_would_come() -> None:
    """The check above can fail: DejaVu Sans alone has no Chinese glyph, and matplotlib
    says so for a chart titled in Chinese."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    from reports.charts import png

    fig = Figure()
    fig.add_subplot().set_title("小米手机")
    with rc_context({"font.family": ["DejaVu Sans"]}), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png(fig)
    assert _glyph_warnings(caught)


def test_an_emoji_in_a_post_does_not_warn_in_the_middle_of_the_pdf() -> None:
    """No installed text font draws emoji: the PDF shows a box, but matplotlib's
    "Glyph ... missing" warning for it must not land in the middle of `report` / `make
    demo` output (it did, once per emoji). A missing Chinese glyph still warns (above)."""
    from dataclasses import replace

    report = _report("en")
    post = report.negative_posts[0].model_copy(update={"text": "Acme support again \U0001f44d\U0001f621"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert to_pdf(replace(report, negative_posts=(post,))).startswith(b"%PDF-")
    assert _glyph_warnings(caught) == []
