"""E-mail messages for alerts: one multipart/alternative message, plain text and HTML.

Everything a post's author wrote is untrusted. In the HTML part it goes through
`html.escape` (quotes included, so it cannot leave an attribute either); in both parts
bidi override/isolate characters are removed and long symbol runs shortened
(`text.untrusted`, the same rule as in Slack). A post's link is written out
whole, with the host it really goes to, and only for http(s): a link is never cut
(a cut URL leads somewhere else), so the size limits fall on the excerpt, the title
and the author instead.

Threading: the Message-ID is derived from the alert id, so a re-sent alert carries the
same id and a mail client shows it once; a follow-up of a wave (still elevated, back
to normal) carries `In-Reply-To` and `References` naming the wave's first message and
the same subject behind `Re: `, which is what Gmail, Outlook and Thunderbird thread on.
"""

from __future__ import annotations

import html
import re
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlsplit

from alerts.health import HealthNotice, notice_text
from alerts.model import Alert
from alerts.notifiers.summary import _when, summary_lines
from alerts.notifiers.text import (
    EXCERPT_CHARS,
    clean_url,
    clip,
    escalation_note,
    expected_text,
    one_line,
    untrusted,
    window_text,
)
from brandpulse.mention import Mention

TITLE_CHARS = 150
AUTHOR_CHARS = 100
SUBJECT_CHARS = 200  # RFC 5322 allows more after folding; clients show far less
MAX_POSTS = 20  # alerts.top_posts allows at most 20
MAX_LINK = 2000  # longer links are left out (never cut)


# How a message goes on the wire: CRLF, and headers folded only past 998 octets (SMTP's
# line limit). The default fold at 78 moves a subject that starts with `[` onto a
# continuation line, and clients then show it with a leading space.
WIRE_POLICY = policy.SMTP.clone(max_line_length=998)


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message as sent over SMTP (bodies are already quoted-printable, 76 a line)."""
    return msg.as_bytes(policy=WIRE_POLICY)


def message_id(alert_id: str, domain: str) -> str:
    """The Message-ID of an alert: the same alert always gets the same one."""
    return f"<{alert_id}@{domain}>"


def sender_domain(sender: str) -> str:
    """The domain of the From address, for Message-IDs (`brandpulse.invalid` without one)."""
    match = re.search(r"@([A-Za-z0-9.\-]+)>?\s*$", sender)
    return match.group(1).lower() if match else "brandpulse.invalid"


def _line(text: str) -> str:
    return one_line(untrusted(text))


def wave_subject(alert: Alert) -> str:
    """The subject every message of the alert's wave shares (replies add `Re: `).

    Built from what does not change during a wave (brand, rule, start), so each
    follow-up matches its first message; what happened now is the body's first line.
    """
    if alert.kind == "high_reach":
        what = "High-reach negative post"
        since = _when(alert.interval_start)
    else:
        what = "Negative sentiment dip" if alert.signal == "share" else "Negative spike"
        since = _when(alert.wave_started_at or alert.interval_start)
    return clip(f"[BrandPulse] {what}: {_line(alert.brand)} ({alert.rule}, {since})", SUBJECT_CHARS)


def status_line(alert: Alert) -> str:
    """What this message says happened, as one plain line."""
    line = _status_line(alert)
    return f"ESCALATED: {line}" if alert.escalated_after is not None else line


def _status_line(alert: Alert) -> str:
    brand = _line(alert.brand)
    if alert.kind == "high_reach":
        post = alert.top_posts[0] if alert.top_posts else None
        who = clip(_line(post.author or ""), AUTHOR_CHARS) if post else ""
        reach = f"{post.author_reach:,}" if post and post.author_reach is not None else "unknown"
        return f"High-reach negative post about {brand} by {who or 'an author'} (reach {reach})"
    ratio = alert.ratio
    times = f" ({ratio:.1f}× usual)" if ratio is not None else ""
    counts = (f"{alert.observed} negative mentions {window_text(alert)}, "
              f"usually {expected_text(alert.expected)}{times}")  # fmt: skip
    if alert.kind == "started":
        what = "Negative sentiment dip" if alert.signal == "share" else "Negative spike"
        return f"{what} for {brand}: {counts}"
    if alert.kind == "continuing":
        return f"Still elevated for {brand}: {counts}"
    return f"Back to normal for {brand}: {counts}"


def _details(alert: Alert) -> list[str]:
    note = escalation_note(alert)
    lines: list[str] = [note] if note else []
    lines += summary_lines(alert)
    if alert.score is not None:
        lines.append(f"Score {alert.score:.1f}; severity {alert.severity}.")
    else:
        lines.append(f"Severity {alert.severity}.")
    return lines


def safe_url(url: str | None) -> tuple[str, str] | None:
    """(URL, host) for an http(s) link, whole (`text.clean_url`: no bidi controls, no
    `user@` part, nothing else changed); None for anything else or an over-long one."""
    clean = clean_url(url)
    if clean is None or len(clean) > MAX_LINK:
        return None
    return clean, urlsplit(clean).hostname or ""


def _post_parts(post: Mention) -> tuple[str, str | None, str, str, str]:
    """(title, link, host, excerpt, meta) of one post, cut to the limits, unescaped."""
    title = clip(_line(post.title or "") or f"Post on {post.source}", TITLE_CHARS)
    link = safe_url(post.url)
    excerpt = clip(_line(post.text or ""), EXCERPT_CHARS)
    meta = [
        clip(_line(post.author or "") or "unknown author", AUTHOR_CHARS),
        f"reach {post.author_reach:,}" if post.author_reach is not None else "reach unknown",
        _line(post.source_name if post.source_name == post.source
              else f"{post.source} · {post.source_name}"),
        _when(post.created_at),
    ]  # fmt: skip
    engagement = post.engagement.total()
    if engagement:
        meta.append(f"{engagement:,} interactions")
    if post.sentiment is not None:
        meta.append(f"negative {post.sentiment.negative:.0%}")
    return title, link[0] if link else None, link[1] if link else "", excerpt, " · ".join(meta)


def _footer(alert: Alert) -> str:
    return f"alert {alert.alert_id} · wave {alert.wave_id} · rule {alert.rule}"


def text_body(alert: Alert) -> str:
    lines = [status_line(alert), "", *_details(alert)]
    posts = alert.top_posts[:MAX_POSTS]
    if posts:
        lines += ["", "Top negative posts:" if alert.kind != "high_reach" else "The post:"]
        for post in posts:
            title, link, host, excerpt, meta = _post_parts(post)
            lines += ["", f"* {title}"]
            if link:
                lines.append(f"  {link} ({host})")
            if excerpt:
                lines.append(f"  > {excerpt}")
            lines.append(f"  {meta}")
    discover = safe_url(alert.discover_url)
    if discover:
        lines += ["", f"Open in Kibana: {discover[0]}"]
    lines += ["", "-- ", _footer(alert)]
    return "\n".join(lines) + "\n"


def html_body(alert: Alert) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\">",
        f"<h2>{e(status_line(alert))}</h2>",
        *(f"<p>{e(line)}</p>" for line in _details(alert)),
    ]
    posts = alert.top_posts[:MAX_POSTS]
    if posts:
        parts.append(f"<h3>{'Top negative posts' if alert.kind != 'high_reach' else 'The post'}</h3><ul>")
        for post in posts:
            title, link, host, excerpt, meta = _post_parts(post)
            heading = (f"<a href=\"{e(link)}\">{e(title)}</a> ({e(host)})" if link
                       else e(title))  # fmt: skip
            quote = f"<blockquote>{e(excerpt)}</blockquote>" if excerpt else ""
            parts.append(f"<li><p><b>{heading}</b></p>{quote}<p><small>{e(meta)}</small></p></li>")
        parts.append("</ul>")
    discover = safe_url(alert.discover_url)
    if discover:
        parts.append(f"<p><a href=\"{e(discover[0])}\">Open in Kibana</a></p>")
    parts.append(f"<hr><p><small>{e(_footer(alert))}</small></p></body></html>")
    return "\n".join(parts) + "\n"


def build_email(
    alert: Alert, *, sender: str, to: list[str], domain: str, reply_to_id: str | None = None
) -> EmailMessage:
    """The message for one alert; `reply_to_id` is the Message-ID of the wave's first
    message, for a follow-up."""
    msg = EmailMessage()
    subject = wave_subject(alert)
    if alert.escalated_after is not None:
        subject = clip(f"[ESCALATED] {subject}", SUBJECT_CHARS)
    msg["Subject"] = f"Re: {subject}" if reply_to_id else subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(alert.created_at)
    msg["Message-ID"] = message_id(alert.alert_id, domain)
    if reply_to_id:
        msg["In-Reply-To"] = reply_to_id
        msg["References"] = reply_to_id
    msg["X-BrandPulse-Alert"] = alert.alert_id
    msg["X-BrandPulse-Severity"] = alert.severity
    # quoted-printable keeps every line under SMTP's 998 octets, long links included
    msg.set_content(text_body(alert), cte="quoted-printable")
    msg.add_alternative(html_body(alert), subtype="html", cte="quoted-printable")
    return msg


def build_notice_email(notice: HealthNotice, *, sender: str, to: list[str], domain: str) -> EmailMessage:
    """An operational notice (a failing source, an Elasticsearch outage), plain text."""
    text = _line(notice_text(notice))
    msg = EmailMessage()
    msg["Subject"] = clip(f"[BrandPulse] {text}", SUBJECT_CHARS)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(notice.at)
    msg["Message-ID"] = message_id(notice.notice_id, domain)
    msg.set_content(text + f"\n\n-- \nnotice {notice.notice_id}\n", cte="quoted-printable")
    return msg
