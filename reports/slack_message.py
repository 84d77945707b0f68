"""The report on Slack: a short Block Kit summary, then the two charts as images in its thread.

Why here and not in `alerts/notifiers/`: what the message says (which figures, themes,
posts) is the report's meaning, and it is built from a `FullReport`; the alert
templates there are built from an `Alert`. The Slack-specific safety rules are not
repeated: untrusted text goes through the alert templates' helpers (`escape`,
`escaped_clip`, `safe_link`, `untrusted`: no `<!channel>`, no disguised links, bidi
controls removed) and the same 429 handling (`BoundedRateLimitRetryHandler`). The
report's core (`reports.full`, `reports.render`, `reports.summary`) imports no channel;
only this module and the daemon's report job know Slack.

Posting needs a bot token (`slack.token` + `slack.channel`): an incoming webhook cannot
upload files. The summary goes out with `chat.postMessage`; the charts follow with
slack-sdk's `files_upload_v2` (`files.getUploadURLExternal` per file, a POST of the
bytes to the URL it returns, then one `files.completeUploadExternal` sharing both into
the summary's thread).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alerts.notifiers.slack_templates import (
    MAX_FALLBACK_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    escape,
    escaped_clip,
    safe_link,
)
from alerts.notifiers.text import clip, untrusted
from brandpulse.config import SlackConfig
from brandpulse.secrets import reveal
from reports.charts import chart_title_key
from reports.full import FullReport
from reports.labels import label
from reports.render import headline, period_text

_POST_CHARS = 200


class ReportSlackError(RuntimeError):
    """Slack refused the report (or could not be reached); the files are written anyway."""


def build_summary(report: FullReport, files: list[str] | None = None) -> dict[str, Any]:
    """`text` (the notification fallback) and `blocks` of the summary message."""
    lang = report.language
    brand = untrusted(report.brand)
    figures = headline(report)
    fields = [
        {"type": "mrkdwn", "text": f"*{label(f.key, lang)}*\n{escape(f.value)} "
                                   f"({label('previous', lang)} {escape(f.previous)}, "
                                   f"{label('change', lang)} {escape(f.change)})"}
        for f in figures
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": False,
                                    "text": clip(f"{label('title', lang)}: {brand}", MAX_HEADER_TEXT)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": escape(
            f"{label('period', lang)}: {period_text(report)}, {label('compared', lang)}")}]},
        {"type": "section", "fields": fields},
    ]
    themes = report.insight.themes
    if themes is not None and themes.themes:
        lines = [f"• {escaped_clip(untrusted(t.label), 80)}: {t.size:,} "
                 f"({label('previous', lang)} {t.previous_size:,})" for t in themes.themes[:3]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": clip(
            f"*{label('themes', lang)}*\n" + "\n".join(lines), MAX_SECTION_TEXT)}})
    if report.negative_posts:
        lines = []
        for m in report.negative_posts[:2]:
            text = escaped_clip(untrusted(" ".join((m.text or m.title or "").split())), _POST_CHARS)
            who = escaped_clip(untrusted(m.author or "?"), 60)
            reach = f"{m.author_reach:,}" if m.author_reach is not None else "–"
            lines.append(f"> {text}\n— {who}, {label('reach', lang)} {reach} · "
                         f"{safe_link(m.url, label('open_post', lang))}")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": clip(
            f"*{label('top_negative', lang)}*\n" + "\n".join(lines), MAX_SECTION_TEXT)}})
    if report.alerts is None:
        alerts = f"{label('alerts_unavailable', lang)}: {report.alerts_note}"
    elif report.alerts:
        kinds: dict[str, int] = {}
        for a in report.alerts:
            kinds[a.kind] = kinds.get(a.kind, 0) + 1
        alerts = ", ".join(f"{k} {n}" for k, n in kinds.items())
    else:
        alerts = label("no_alerts", lang)
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                               "text": f"*{label('alerts', lang)}*\n{escape(alerts)}"}})
    if files:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text":
                       clip(escape(f"{label('full_report', lang)}: {', '.join(files)}"), 2000)}]})
    text = clip(f"{label('title', lang)}: {brand} — " + "; ".join(
        f"{label(f.key, lang)} {f.value} ({f.change})" for f in figures), MAX_FALLBACK_TEXT)
    return {"text": text, "blocks": blocks}


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str
    file_ids: tuple[str, ...]


def post_report(
    report: FullReport, charts: dict[str, bytes], slack: SlackConfig, *,
    files: list[str] | None = None, timeout: float = 30.0,
) -> Posted:
    """Post the summary, then upload `charts` (name -> PNG) into its thread."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError, SlackClientError
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

    from alerts.notifiers.slack import BoundedRateLimitRetryHandler

    token = reveal(slack.token)
    if token is None or not slack.channel:
        raise ReportSlackError("posting a report needs slack.token and slack.channel "
                               "(an incoming webhook cannot upload the charts)")
    kwargs: dict[str, Any] = {"token": token, "timeout": int(timeout), "retry_handlers": [
        ConnectionErrorRetryHandler(max_retry_count=1), BoundedRateLimitRetryHandler()]}
    if slack.base_url:
        kwargs["base_url"] = slack.base_url.rstrip("/") + "/"
    web = WebClient(**kwargs)
    lang = report.language
    try:
        message = build_summary(report, files)
        sent = web.chat_postMessage(channel=slack.channel, unfurl_links=False, **message)
        channel, ts = str(sent["channel"]), str(sent["ts"])
        uploads = [
            {"file": data, "filename": f"{name}.png",
             "title": label(chart_title_key(name, report.insight.share_of_voice), lang),
             "alt_txt": label(chart_title_key(name, report.insight.share_of_voice), lang)}
            for name, data in charts.items()
        ]
        done = web.files_upload_v2(file_uploads=uploads, channel=channel, thread_ts=ts)
    except SlackApiError as exc:
        raise ReportSlackError(f"Slack refused the report: {exc.response.get('error')}") from None
    except (SlackClientError, OSError) as exc:
        raise ReportSlackError(f"Slack could not be reached: {exc}") from None
    return Posted(channel=channel, ts=ts,
                  file_ids=tuple(str(f["id"]) for f in done.get("files") or []))


def slack_poster(slack: SlackConfig) -> Callable[[FullReport, dict[str, bytes], list[str]], Posted]:
    """`post_report` to `slack`, as the poster `reports.publish.publish_report` takes."""

    def post(report: FullReport, charts: dict[str, bytes], files: list[str]) -> Posted:
        return post_report(report, charts, slack, files=files)

    return post
