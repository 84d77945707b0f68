"""Hostile post text in Slack alerts, checked through the local Slack sandbox (real
HTTP through slack-sdk; the sandbox rejects what Slack rejects): no bidi tricks, an
excerpt that keeps real text after a flood of `<`, no auto-linking of bare URLs or
channel names, and a title link that shows the host it really goes to."""

from __future__ import annotations

import json
import re

from alerts.notifiers.slack import SlackNotifier
from sandbox.slack import SlackSandbox
from tests.alerts.notifiers.conftest import _make_alert as make_alert
from tests.alerts.notifiers.conftest import _make_post as make_post

BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f]")


def _send(*posts) -> dict:
    with SlackSandbox() as slack:
        SlackNotifier(token=slack.token, channel=slack.channel, base_url=slack.base_url).send(
            make_alert(top_posts=tuple(posts))
        )
        [message] = slack.messages
        rendered = slack.render()
    return {"blocks": message.blocks, "text": message.payload.get("text", ""), "rendered": rendered}


def _post_texts(blocks: list[dict]) -> list[dict]:
    """The text objects of the post blocks (after the 'Top negative posts' heading)."""
    out = []
    for block in blocks:
        if block["type"] == "section" and "text" in block and block["text"]["text"].startswith("*<"):
            out.append(block["text"])
        if block["type"] == "context" and " · reach " in block["elements"][0]["text"]:
            out.extend(block["elements"])
    return out


def test_bidi_controls_are_removed_from_excerpt_author_title_and_url():
    post = make_post(
        0,
        title="Acme \u202egnikcah\u202c news",
        text="Ask \u2066the\u2069 \u202enimda\u202c for a refund \u200f!",
        author="\u202emoc.emca\u202c",
        url="https://example.com/\u202eevil",
    )
    msg = _send(post)
    payload = json.dumps(msg["blocks"], ensure_ascii=False) + msg["text"]
    assert not BIDI.search(payload), BIDI.findall(payload)
    assert "nimda" in payload and "gnikcah" in payload  # the words stay, the trick goes


def test_an_excerpt_after_300_angle_brackets_keeps_real_text():
    post = make_post(0, text="<" * 300 + " Acme lost my data and support hung up on me")
    msg = _send(post)
    section = next(t for t in _post_texts(msg["blocks"]) if t["type"] == "mrkdwn" and "\n>" in t["text"])
    excerpt = section["text"].split("\n>", 1)[1]
    assert "Acme lost my data and support hung up on me" in excerpt
    assert excerpt != "…"
    assert "Acme lost my data" in msg["rendered"]


def test_user_text_is_verbatim_so_bare_urls_and_channels_are_not_linked():
    post = make_post(0, text="see https://evil.example/login and join #general @here")
    msg = _send(post)
    texts = _post_texts(msg["blocks"])
    assert texts and all(t.get("verbatim") is True for t in texts)
    joined = " ".join(t["text"] for t in texts)
    assert "<https://evil.example" not in joined and "<#" not in joined


def test_a_title_link_shows_the_host_it_really_goes_to():
    post = make_post(0, title="Official statement from trusted.example",
                     url="https://trusted.example@evil.example/statement")  # fmt: skip
    msg = _send(post)
    [heading] = [t["text"] for t in _post_texts(msg["blocks"]) if t["text"].startswith("*<")]
    targets = re.findall(r"<([^|>]+)\|", heading)
    assert targets == ["https://evil.example/statement"]  # the user@ part is gone
    assert heading.endswith("(evil.example)*") or "(evil.example)" in heading
    assert "trusted.example@" not in json.dumps(msg["blocks"])
    assert "(evil.example)" in msg["rendered"]
