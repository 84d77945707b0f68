from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from alerts.model import Alert, wave_id_for
from alerts.notifiers.base import kibana_discover_url
from brandpulse.mention import Mention, Sentiment
from sandbox.bots import BotSandbox
from sandbox.slack import SlackSandbox

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def bots() -> Iterator[BotSandbox]:
    """The local webhook/Teams/WeCom/DingTalk/Feishu bots (sandbox.bots)."""
    with BotSandbox() as sandbox:
        yield sandbox


def _make_post(i: int = 0, **overrides: object) -> Mention:
    fields: dict[str, object] = {
        "source": "reddit",
        "source_id": f"p{i}",
        "source_name": "reddit",
        "url": f"https://www.reddit.com/r/acme/comments/p{i}",
        "author": f"user{i}",
        "author_reach": 1000 * (i + 1),
        "title": f"Acme support ignored me ({i})",
        "text": "Third day without a working router and nobody answers.",
        "created_at": T0 + timedelta(minutes=i),
        "brands": ["Acme"],
        "sentiment": Sentiment(
            label="negative", negative=0.9, neutral=0.07, positive=0.03, model="test"
        ),
    }
    fields.update(overrides)
    return Mention.model_validate(fields)


def _make_alert(kind: str = "started", posts: int = 3, **overrides: object) -> Alert:
    start, end = T0, T0 + timedelta(hours=1)
    fields: dict[str, object] = {
        "kind": kind,
        "brand": "Acme",
        "wave_id": wave_id_for("Acme", T0),
        "interval_start": start,
        "interval_end": end,
        "observed": 84,
        "expected": 12.0,
        "total": 200,
        "negative_share": 0.42,
        "usual_share": 0.12,
        "score": 7.5,
        "wave_started_at": T0,
        "top_posts": tuple(_make_post(i) for i in range(posts)),
        "discover_url": kibana_discover_url("http://kibana.local:5601", "Acme", start, end),
    }
    fields.update(overrides)
    return Alert(**fields)  # type: ignore[arg-type]


@pytest.fixture
def make_post():
    """Builds a negative Reddit mention of Acme; keyword arguments override fields."""
    return _make_post


@pytest.fixture
def make_alert():
    """Builds an Acme alert for 14:00-15:00 with `posts` top posts; kwargs override fields."""
    return _make_alert


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung service):
    the request goes out, the answer never comes."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.fixture
def make_notice():
    """Builds a health notice (source_down for 'reddit' by default); kwargs override fields."""
    from alerts.health import HealthNotice

    def make(**overrides: object) -> HealthNotice:
        fields: dict[str, object] = {"kind": "source_down", "subject": "reddit", "since": T0,
                                     "at": T0 + timedelta(hours=1), "failures": 3,
                                     "error": "HTTP 503 from reddit.com"}  # fmt: skip
        fields.update(overrides)
        return HealthNotice(**fields)  # type: ignore[arg-type]

    return make
