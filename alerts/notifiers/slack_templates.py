"""Block Kit messages for alerts.

Everything a post's author wrote is untrusted: it is escaped before it reaches a
mrkdwn field, so no post can ping `<!channel>`, mention `<@U123>` or dress a link up as
something else (`<http://evil|kibana>`). Text objects that carry it are `verbatim`, so
Slack does not turn a bare URL or `#channel` in a post into a link either. Before
that, every channel's rules apply (`alerts.notifiers.text`): bidi controls removed, long
symbol runs shortened, a post's link only http(s) without a `user@` part, shown with
the host it really goes to. Every field is also cut to Slack's limits,
because Slack rejects (rather than truncates) an over-long block and the alert would
then be lost to a 20,000-character rant; the cut is made on what a reader sees, after
long runs of punctuation are shortened, so 300 `<` cannot eat an excerpt's budget.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from alerts.model import Alert
from alerts.notifiers.summary import _duration, _pct, _when, counted, summary_lines
from alerts.notifiers.text import (
    ELLIPSIS,
    EXCERPT_CHARS,
    clean_url,
    clip,
    count_text,
    escalation_note,
    expected_text,
    one_line,
    untrusted,
    window_text,
)
from brandpulse.mention import Mention

# Slack's documented limits (https://docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_TEXT = 2000  # per element
MAX_FIELD_TEXT = 2000
MAX_BUTTON_URL = 3000
MAX_BUTTON_TEXT = 75
MAX_FALLBACK_TEXT = 4000  # Slack truncates `text` at 40,000; a fallback needs far less


# `@here` and friends only ping when written as `<!here>`, which escaping defeats; a
# word joiner after the `@` also keeps clients that linkify bare words from doing so.
_BROADCAST = re.compile(r"@(here|channel|everyone)\b", re.IGNORECASE)


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives control meaning to."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@\u2060\\1", escaped)


def escaped_clip(raw: str, limit: int, *, max_len: int | None = None) -> str:
    """Escape `raw` and cut it to `limit` characters as a reader sees them (an entity
    counts as one), and to at most `max_len` characters of mrkdwn; never inside an
    entity, and ending in an ellipsis when cut.

    Counting what a reader sees keeps the budget for text: an excerpt of `<` and `&`
    is not five times shorter than one of letters. `max_len` (default five times
    `limit`, the most escaping can grow) is Slack's limit for the field.
    """
    max_len = 5 * limit if max_len is None else max_len
    out = escape(raw)
    if len(raw) <= limit and len(out) <= max_len:
        return out
    keep = min(len(raw), limit - 1)
    out = escape(raw[:keep].rstrip()) + ELLIPSIS
    while len(out) > max_len and keep > 0:
        # shrink by the overshoot, counted in raw characters (each escapes to 1..5)
        keep = max(0, keep - max((len(out) - max_len + 4) // 5, 1))
        out = escape(raw[:keep].rstrip()) + ELLIPSIS
    return out


def _link_target(url: str | None) -> tuple[str, str] | None:
    """(mrkdwn-safe URL, host) for an http(s) URL (`text.clean_url`), or None for anything
    else or a link too long for a field. Inside <url|label> the URL must not contain '|'
    or '>' and must be entity-escaped."""
    clean = clean_url(url)
    if clean is None:
        return None
    host = urlsplit(clean).hostname or ""
    target = clean.replace("|", "%7C").replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E")
    if len(target) > 1000:
        return None
    return target, host


def safe_link(url: str | None, label: str) -> str:
    """A mrkdwn link to an http(s) URL followed by the host it goes to, or the escaped
    label alone for anything else. `label` is raw text; it is escaped here."""
    label = escape(label)
    link = _link_target(url)
    if link is None:
        return label
    target, host = link
    return f"<{target}|{label}> ({escape(host)})"


def _counted(alert: Alert) -> str:
    """What `observed` counts, in words (escaped): see `Alert.rule`."""
    return counted(alert, escape)


def _source(alert: Alert) -> str:
    """" from source 'x'" for a flatline alert about one source, else nothing."""
    return f" from source '{escape(alert.subject)}'" if alert.subject else ""


def _sov(alert: Alert) -> tuple[float | None, float | None, str]:
    """(share of voice on the day, usual share, "up"/"down") of a `sov_shift` alert."""
    total = alert.total or 0
    share = alert.observed / total if total else None
    usual = alert.expected / total if total else None
    way = "up" if share is not None and usual is not None and share >= usual else "down"
    return share, usual, way


def _day(alert: Alert) -> str:
    return f"{alert.interval_start:%Y-%m-%d} (UTC)"


# Header titles per rule and kind; a rule not listed uses the negative spike's.
_TITLES: dict[str, dict[str, str]] = {
    "negative_spike": {
        "started": ":rotating_light: Negative spike",
        "continuing": ":hourglass_flowing_sand: Still elevated",
        "ended": ":white_check_mark: Back to normal",
    },
    "high_reach": {"high_reach": ":loudspeaker: High-reach negative post"},
    "volume_spike": {
        "started": ":chart_with_upwards_trend: Volume spike",
        "continuing": ":hourglass_flowing_sand: Volume still high",
        "ended": ":white_check_mark: Volume back to normal",
    },
    "positive_spike": {
        "started": ":star2: Positive wave (opportunity)",
        "continuing": ":hourglass_flowing_sand: Positive wave goes on",
        "ended": ":white_check_mark: Positive wave over",
    },
    "competitor_negative_spike": {
        "started": ":dart: Competitor under fire (opportunity)",
        "continuing": ":hourglass_flowing_sand: Competitor still under fire",
        "ended": ":white_check_mark: Competitor's wave over",
    },
    "sov_shift": {"started": ":scales: Share of voice shift"},
    "flatline": {
        "started": ":mute: Mentions stopped",
        "ended": ":loud_sound: Mentions are back",
    },
}


def headline(alert: Alert) -> str:
    """One line saying what happened, untrusted text escaped: also the `text` fallback."""
    line = _headline(alert)
    return f"ESCALATED: {line}" if alert.escalated_after is not None else line


def _headline(alert: Alert) -> str:
    brand = escape(alert.brand)
    window = window_text(alert)
    if alert.kind == "high_reach":
        post = alert.top_posts[0] if alert.top_posts else None
        who = (escape(one_line(untrusted(post.author or ""))) or "an author") if post else "an author"
        reach = count_text(post.author_reach) if post else "unknown"
        return f"High-reach negative post about {brand} by {who} (reach {reach})"
    if alert.rule == "sov_shift":
        share, usual, way = _sov(alert)
        return (
            f"Share of voice of {brand} {way} on {_day(alert)}: {_pct(share)} of "
            f"{count_text(alert.total)} mentions with its competitors, usually {_pct(usual)}"
        )
    if alert.rule == "flatline":
        silent = _duration(alert.wave_started_at or alert.interval_start, alert.interval_end)
        if alert.kind == "ended":
            return f"Mentions of {brand}{_source(alert)} are back after {silent} of silence"
        return (
            f"No mentions of {brand}{_source(alert)} since "
            f"{_when(alert.interval_start)} ({silent}); usually {expected_text(alert.expected)} "
            "in that time"
        )
    counts = f"{alert.observed} {_counted(alert)} {window}, usually {expected_text(alert.expected)}"
    if alert.rule == "competitor_negative_spike":
        rival = escape(alert.subject or "a competitor")
        if alert.kind == "started":
            return f"Negative wave for competitor {rival} (an opportunity for {brand}): {counts}"
        if alert.kind == "continuing":
            return f"Competitor {rival} still under fire (for {brand}): {counts}"
        return f"Competitor {rival} back to normal (for {brand}): {counts}"
    if alert.rule in ("volume_spike", "positive_spike"):
        what = "Volume spike" if alert.rule == "volume_spike" else "Positive wave"
        if alert.kind == "started":
            return f"{what} for {brand}: {counts}"
        if alert.kind == "continuing":
            return f"{what} goes on for {brand}: {counts}"
        return f"{what} over for {brand}: {counts}"
    if alert.kind == "started":
        what = "Negative sentiment dip" if alert.signal == "share" else "Negative spike"
        return f"{what} for {brand}: {counts}"
    if alert.kind == "continuing":
        return f"Still elevated for {brand}: {counts}"
    return f"Back to normal for {brand}: {counts}"


def _header_text(alert: Alert) -> str:
    titles = _TITLES.get(alert.rule, _TITLES["negative_spike"]) | _TITLES["high_reach"]
    title = titles.get(alert.kind) or _TITLES["negative_spike"].get(alert.kind, alert.kind)
    if alert.rule == "negative_spike" and alert.kind == "started" and alert.signal == "share":
        title = ":chart_with_downwards_trend: Negative sentiment dip"
    if alert.escalated_after is not None:
        title = f":sos: Escalated {title}"
    if alert.rule == "sov_shift":
        title += " " + _sov(alert)[2]
    if alert.rule == "flatline" and alert.subject:
        title += f" from {alert.subject}"  # plain text: no escaping (see below)
    name = alert.brand
    if alert.rule == "competitor_negative_spike" and alert.subject:
        name = f"{alert.subject} (for {alert.brand})"
    # plain_text headers are never parsed, so the brand needs no escaping here.
    return clip(f"{title}: {name}", MAX_HEADER_TEXT)


def themes_line(alert: Alert) -> str | None:
    """"Mostly: data loss · backups (62%), support · wait (21%)" for an alert whose wave
    has themes, else None. The labels are words posts wrote: escaped, each cut short."""
    if not alert.themes:
        return None
    parts = [
        f"{escaped_clip(one_line(untrusted(t.label)), 80)} ({_pct(t.share)})" for t in alert.themes
    ]
    return "Mostly: " + ", ".join(parts)


def _summary(alert: Alert) -> str:
    brand = escape(alert.brand)
    window = window_text(alert)
    ratio = alert.ratio
    times = f" ({ratio:.1f}× usual)" if ratio is not None else ""
    note = escalation_note(alert)
    lead = "" if note is None else f"*{escape(note)}*\n"
    if alert.kind == "high_reach":
        return lead + f"A negative post about *{brand}* from an account with a large audience."
    if alert.rule == "sov_shift":
        share, usual, way = _sov(alert)
        return clip(
            lead + f"On {_day(alert)} *{brand}* had *{_pct(share)}* of the "
            f"{count_text(alert.total)} mentions of it and its competitors "
            f"({alert.observed:,} of them), against a usual *{_pct(usual)}*: its share "
            f"of voice went *{way}*, more than day-to-day chance explains.",
            MAX_SECTION_TEXT,
        )
    if alert.rule == "flatline":
        began = alert.wave_started_at or alert.interval_start
        silent = _duration(began, alert.interval_end)
        if alert.kind == "ended":
            return clip(
                lead + f"Mentions of *{brand}*{_source(alert)} are coming in again after "
                f"{silent} without any (since {_when(began)}).",
                MAX_SECTION_TEXT,
            )
        what = (
            "a source whose crawls succeed but find nothing (a changed page or API), or a "
            "query that no longer matches"
            if alert.subject
            else "a stopped crawler, a broken query or a scoring backlog"
        )
        return clip(
            lead + f"No mentions of *{brand}*{_source(alert)} since {_when(alert.interval_start)} "
            f"({silent}), when about *{expected_text(alert.expected)}* were expected: silence "
            f"that long is improbable for it. Worth checking {what}.",
            MAX_SECTION_TEXT,
        )
    lines = [] if note is None else [f"*{escape(note)}*"]
    lines += [
        f"*{alert.observed}* {_counted(alert)} of *{brand}* in {window}, "
        f"against a usual *{expected_text(alert.expected)}*{times}."
    ]
    if alert.rule == "competitor_negative_spike":
        rival = escape(alert.subject or "a competitor")
        lines[-1:] = [
            f"*{alert.observed}* negative mentions of competitor *{rival}* in {window}, "
            f"against a usual *{expected_text(alert.expected)}*{times}: people unhappy with "
            f"{rival} may be open to *{brand}*."
        ]
    elif alert.rule == "positive_spike":
        lines.append("An opportunity: people are praising the brand more than usual.")
    lines += summary_lines(alert, strong=lambda text: f"*{text}*", name=escape,
                           themes=themes_line(alert))  # fmt: skip
    # Built from escaped parts only; the brand is configuration and each theme label is
    # cut on its own, so a cut cannot split an entity a post wrote.
    return clip("\n".join(lines), MAX_SECTION_TEXT)


def _fields(alert: Alert) -> list[dict[str, str]]:
    if alert.rule == "sov_shift":
        share, usual, _ = _sov(alert)
        fields = [
            ("Brand", escape(alert.brand)),
            ("Day", _day(alert)),
            ("Share of voice", f"{_pct(share)} (usual {_pct(usual)})"),
            ("Mentions", f"{alert.observed:,} of {count_text(alert.total)}"),
        ]
    elif alert.rule == "flatline":
        fields = [
            ("Brand", escape(alert.brand)),
            ("Silent since", _when(alert.wave_started_at or alert.interval_start)),
            ("Expected meanwhile", expected_text(alert.expected)),
        ]
        if alert.subject:
            fields.append(("Source", escape(alert.subject)))
    elif alert.rule == "negative_spike":
        fields = [
            ("Brand", escape(alert.brand)),
            ("Window", window_text(alert)),
            ("Negative mentions", f"{alert.observed} (usual {expected_text(alert.expected)})"),
            ("Negative share", f"{_pct(alert.negative_share)} (usual {_pct(alert.usual_share)})"),
        ]
    else:
        fields = [("Brand", escape(alert.brand))]
        if alert.subject:
            fields.append(("Competitor", escape(alert.subject)))
        fields += [
            ("Window", window_text(alert)),
            (_counted(alert).capitalize(), f"{alert.observed} (usual {expected_text(alert.expected)})"),
        ]
    if alert.score is not None:
        fields.append(("Score", f"{alert.score:.1f}"))
    return [
        {"type": "mrkdwn", "text": clip(f"*{name}*\n{value}", MAX_FIELD_TEXT)}
        for name, value in fields
    ]


def _post_blocks(post: Mention) -> list[dict[str, Any]]:
    title = one_line(untrusted(post.title or "")) or f"Post on {post.source}"
    link = safe_link(post.url, clip(title, 150))
    heading = f"*{link}*"
    body = one_line(untrusted(post.text))
    # what the heading leaves of the section's limit goes to the excerpt
    room = MAX_SECTION_TEXT - len(heading) - 2
    excerpt = escaped_clip(body, EXCERPT_CHARS, max_len=room) if body and room > 1 else ""
    text = heading + (f"\n>{excerpt}" if excerpt else "")
    meta = [
        f"*{escaped_clip(one_line(untrusted(post.author or '')) or 'unknown author', 100)}*",
        f"reach {count_text(post.author_reach)}",
        escape(
            post.source_name
            if post.source_name == post.source
            else f"{post.source} · {post.source_name}"
        ),
        _when(post.created_at),
    ]
    engagement = post.engagement.total()
    if engagement:
        meta.append(f"{engagement:,} interactions")
    if post.sentiment is not None:
        meta.append(f"negative {post.sentiment.negative:.0%}")
    return [
        {
            "type": "section",
            # verbatim: Slack must not turn bare URLs or #channels in the post into links
            "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT), "verbatim": True},
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": clip(" · ".join(meta), MAX_CONTEXT_TEXT), "verbatim": True}
            ],
        },
    ]


def _kibana_button(alert: Alert) -> dict[str, Any] | None:
    url = alert.discover_url
    if not url or len(url) > MAX_BUTTON_URL:
        return None
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": clip("Open in Kibana", MAX_BUTTON_TEXT)},
                "url": url,
                "action_id": "open_kibana",
            }
        ],
    }


_POSTS_TITLES = {
    "volume_spike": "Top posts",
    "positive_spike": "Top positive posts",
    "competitor_negative_spike": "Top negative posts about the competitor",
}


# The response buttons (Socket Mode, `alerts.slack_actions`): action_id -> (label, what
# it records through `AlertStateStore.acknowledge`, snooze length). Each button's value
# is the alert id.
RESPONSE_BLOCK_ID = "brandpulse_response"
RESPONSE_ACTIONS: dict[str, tuple[str, str, timedelta | None]] = {
    "brandpulse_ack": ("Acknowledge", "acknowledged", None),
    "brandpulse_snooze_1h": ("Snooze 1 h", "snoozed", timedelta(hours=1)),
    "brandpulse_snooze_24h": ("Snooze 24 h", "snoozed", timedelta(hours=24)),
    "brandpulse_false_alarm": ("Not a real issue", "false_alarm", None),
}


def response_buttons(alert: Alert) -> dict[str, Any]:
    """The actions block of an alert's response buttons (value: the alert id)."""
    elements: list[dict[str, Any]] = []
    for action_id, (label, _response, _snooze) in RESPONSE_ACTIONS.items():
        button: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": label},
            "action_id": action_id,
            "value": alert.alert_id,
        }
        if action_id == "brandpulse_ack":
            button["style"] = "primary"
        elements.append(button)
    return {"type": "actions", "block_id": RESPONSE_BLOCK_ID, "elements": elements}


def with_response(blocks: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """`blocks` with the response buttons replaced by `note` (who did what, when), so
    the message itself shows the alert's state; `note` is mrkdwn, already escaped."""
    out: list[dict[str, Any]] = []
    for block in blocks:
        if block.get("block_id") == RESPONSE_BLOCK_ID or block.get("block_id") == RESPONSE_BLOCK_ID + "_done":
            out.append({"type": "context", "block_id": RESPONSE_BLOCK_ID + "_done",
                        "elements": [{"type": "mrkdwn", "text": clip(note, MAX_CONTEXT_TEXT)}]})  # fmt: skip
        else:
            out.append(block)
    return out


def build_message(
    alert: Alert, *, in_thread: bool = False, interactive: bool = False
) -> dict[str, Any]:
    """`{"text": ..., "blocks": [...]}` for one alert, within every Slack limit.

    `in_thread` drops the header and fields: a reply under the wave's first message
    only needs what changed. `interactive` (Socket Mode configured) adds the response
    buttons to a message that pages (a new wave, a high-reach post).
    """
    blocks: list[dict[str, Any]] = []
    if not in_thread:
        blocks.append(
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _header_text(alert), "emoji": True},
            }
        )
    else:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*{escape(_header_text(alert))}*"},
            }
        )
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _summary(alert)}})
    if alert.kind != "high_reach" and not in_thread:
        blocks.append({"type": "section", "fields": _fields(alert)})

    button = _kibana_button(alert)
    footer = [
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": clip(
                        f"alert `{alert.alert_id}` · wave `{alert.wave_id}`", MAX_CONTEXT_TEXT
                    ),
                }
            ],
        }
    ]
    if interactive and not in_thread and alert.kind in ("started", "high_reach"):
        footer.insert(0, response_buttons(alert))
    if button is not None:
        footer.insert(0, button)
    elif alert.discover_url:
        footer[0]["elements"].append(
            {"type": "mrkdwn", "text": "Kibana link omitted: longer than Slack allows"}
        )

    posts = list(alert.top_posts)
    if posts:
        title = _POSTS_TITLES.get(alert.rule, "Top negative posts")
        if alert.kind == "high_reach":
            title = "The post"
        heading = {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}}
        # Keep room for the heading, the footer and a possible "N more" note.
        room = MAX_BLOCKS - len(blocks) - len(footer) - 2 - 1
        shown = posts[: max(room // 2, 0)]
        blocks.append({"type": "divider"})
        blocks.append(heading)
        for post in shown:
            blocks.extend(_post_blocks(post))
        if len(shown) < len(posts):
            blocks.append(
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": f"…and {len(posts) - len(shown)} more in Kibana.",
                        }
                    ],
                }
            )
    blocks.extend(footer)
    assert len(blocks) <= MAX_BLOCKS, "block budget arithmetic is wrong"
    return {"text": clip(headline(alert), MAX_FALLBACK_TEXT), "blocks": blocks}
