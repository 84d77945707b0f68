"""AlertEngine end to end: mentions in a real Elasticsearch node, messages in the Slack sandbox.

Nothing is mocked. Each test gets its own index prefix, so mention indices, templates
and alert state never leak between tests sharing the session's node.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.engine import SEND_LEASE, AlertEngine
from alerts.model import Alert
from alerts.notifiers.slack import SlackNotifier
from alerts.rules import AlertRule, Check, Evaluation, Planned
from alerts.state import AlertStateStore, OutboxEntry, StateConflict, install, state_index
from brandpulse.alert_settings import HighReachSettings
from brandpulse.config import Config
from brandpulse.mention import Mention, Sentiment
from sandbox.slack import SlackSandbox
from store.reader import RollupMentionReader
from store.rollup import counts_rollup
from store.setup import setup_elasticsearch
from store.writer import BulkWriter
from tests.alerts.memory_reader import MemoryMentionReader

# A check at NOW judges intervals up to 12:00 (query delay 2 min, 5-min intervals).
NOW = datetime(2026, 11, 20, 12, 3, tzinfo=UTC)
WAVE_START = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
LABEL_SCORES = {
    "negative": (0.9, 0.07, 0.03),
    "neutral": (0.1, 0.8, 0.1),
    "positive": (0.03, 0.07, 0.9),
}


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def prefix(es_client: Elasticsearch) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    # Deleting by wildcard is refused (destructive_requires_name): name each index.
    for existing in es_client.indices.get(index=f"{name}-*", allow_no_indices=True):
        es_client.indices.delete(index=existing)
    client = es_client.options(ignore_status=404)
    client.indices.delete_index_template(name=f"{name}-mentions")
    client.indices.delete_index_template(name=f"{name}-counts-hourly")
    for part in ("settings", "mappings"):
        client.cluster.delete_component_template(name=f"{name}-mentions-{part}")


def make_config(
    prefix: str, slack: SlackSandbox, sources: list[dict] | None = None, **alerts: object
) -> Config:
    return Config.model_validate(
        {
            "brands": [{"name": "Acme"}, {"name": "Tiny"}],
            "sources": sources or [],
            "elasticsearch": {"index_prefix": prefix},
            "slack": {"token": slack.token, "channel": slack.channel, "base_url": slack.base_url},
            "kibana": {"url": "http://kibana.local:5601"},
            "alerts": {
                "history": "3d",
                "query_delay": "2m",
                # Explicit, so the tests do not move when the tuned defaults do.
                "spike": {
                    "interval": 300,
                    "window": 3600,
                    "min_count": 10,
                    "min_ratio": 2.0,
                    "threshold": 3.0,
                    "end_threshold": 1.5,
                    "end_after": 1800,
                    "warmup": 2 * 86400,
                    "cooldown": 3600,
                    "continuing_every": 3600,
                },
                **alerts,
            },
        }
    )


def mention(
    brand: str, at: datetime, label: str, key: str, *, reach: int = 100, author: str | None = None
) -> Mention:
    neg, neu, pos = LABEL_SCORES[label]
    return Mention(
        source="reddit",
        source_id=f"{brand}-{key}",
        source_name="reddit",
        url=f"https://www.reddit.com/r/{brand.lower()}/comments/{key}",
        author=author or f"user-{key}",
        author_reach=reach,
        title=f"{brand} post {key}",
        text=f"What I think about {brand} ({label}).",
        created_at=at,
        brands=[brand],
        sentiment=Sentiment(label=label, negative=neg, neutral=neu, positive=pos, model="test"),  # type: ignore[arg-type]
    )


def background(
    brand: str, start: datetime, end: datetime, negatives_per_hour: int = 3
) -> list[Mention]:
    """A steady, slightly uneven stream: a few negatives and more neutral/positive each hour."""
    out: list[Mention] = []
    hour = start
    i = 0
    while hour < end:
        negatives = negatives_per_hour - 1 + (i % 3)  # 2, 3, 4 ... around the mean
        for k in range(negatives):
            out.append(
                mention(brand, hour + timedelta(minutes=7 + 17 * k), "negative", f"bg{i}n{k}")
            )
        for k in range(6):
            label = "neutral" if k % 2 else "positive"
            out.append(mention(brand, hour + timedelta(minutes=3 + 9 * k), label, f"bg{i}o{k}"))
        hour += timedelta(hours=1)
        i += 1
    return out


def wave(brand: str, start: datetime, n: int, tag: str) -> list[Mention]:
    """`n` negative mentions spread over the hour from `start`."""
    step = timedelta(hours=1) / n
    return [
        mention(brand, start + i * step, "negative", f"{tag}{i}", reach=500 + i) for i in range(n)
    ]


def index(es: Elasticsearch, config: Config, tmp_path: Path, mentions: list[Mention]) -> None:
    """Write as the daemon does: with the default `alerts.counts_source: rollup` every batch
    also recomputes the hourly counts it touched, so these checks read the rollup path."""
    setup_elasticsearch(es, config.elasticsearch, now=NOW)
    with BulkWriter(es, config.elasticsearch, spool_dir=tmp_path / "spool", refresh=True) as writer:
        counts_rollup(config, es, writer)
        report = writer.write(mentions)
    assert report.ok, report.summary()


def engine(config: Config, es: Elasticsearch, slack: SlackSandbox, **kwargs: object) -> AlertEngine:
    return AlertEngine(config, es, SlackNotifier.from_config(config.slack), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def acme_wave(es_client, prefix, slack, tmp_path) -> Config:
    """Three days of quiet Acme and Tiny, then 80 negative Acme mentions in 11:00-12:00."""
    config = make_config(prefix, slack)
    start = NOW - timedelta(days=3)
    key_posts = [
        mention("Acme", WAVE_START + timedelta(minutes=m), "negative", f"key{m}", reach=r, author=a)
        for m, r, a in (
            (12, 90_000, "bigcritic"),
            (25, 70_000, "techblog"),
            (40, 60_000, "angryfan"),
        )
    ]
    tiny = [
        mention("Tiny", start + timedelta(hours=h), "negative", f"t{h}") for h in range(0, 72, 20)
    ]
    tiny += [
        mention("Tiny", WAVE_START + timedelta(minutes=5 * k), "negative", f"tw{k}")
        for k in range(6)
    ]
    index(
        es_client,
        config,
        tmp_path,
        background("Acme", start, WAVE_START + timedelta(hours=1))
        + wave("Acme", WAVE_START, 80, "w")
        + key_posts
        + tiny,
    )
    return config


def test_a_negative_wave_posts_exactly_one_message_with_the_top_posts(es_client, slack, acme_wave):
    checker = engine(acme_wave, es_client, slack)
    sent = checker.check(NOW)
    # The default path: whole hours from the counts rollup the writes maintained.
    assert isinstance(checker.reader, RollupMentionReader) and checker.reader.read_docs > 0

    assert [(a.kind, a.brand) for a in sent] == [("started", "Acme")]
    [message] = slack.messages
    alert = sent[0]
    assert alert.interval_start == WAVE_START and alert.interval_end == WAVE_START + timedelta(
        hours=1
    )
    assert alert.observed >= 80 and alert.expected < 10
    assert alert.negative_share is not None and alert.negative_share > 0.8
    assert alert.usual_share is not None and alert.usual_share < 0.5
    # The highest-reach negative posts of the window, in order.
    assert [p.author for p in alert.top_posts[:3]] == ["bigcritic", "techblog", "angryfan"]
    assert len(alert.top_posts) == 5
    text = slack.render()
    assert "Negative spike: Acme" in text
    assert text.index("bigcritic") < text.index("techblog") < text.index("angryfan")
    assert "reach 90,000" in text
    button = next(b for b in message.blocks if b["type"] == "actions")["elements"][0]["url"]
    assert button.startswith("http://kibana.local:5601/app/discover#/")
    assert "2026-11-20T11:00:00Z" in button and "2026-11-20T12:00:00Z" in button
    assert "Tiny" not in text  # 6 negatives is a big ratio but below min_count

    # Exactly once: the next check, within the same interval or the next one, is silent.
    assert engine(acme_wave, es_client, slack).check(NOW + timedelta(minutes=1)) == []
    assert engine(acme_wave, es_client, slack).check(NOW + timedelta(minutes=5)) == []
    assert len(slack.messages) == 1


def test_a_restarted_engine_does_not_repeat_and_state_is_in_elasticsearch(
    es_client, slack, acme_wave
):
    first = engine(acme_wave, es_client, slack, owner="daemon-1")
    assert len(first.check(NOW)) == 1

    store = AlertStateStore(es_client, acme_wave.elasticsearch.index_prefix)
    state = store.load_brand("Acme")
    # The wave is dated from the start of the window that first looked elevated.
    assert state.open_wave is not None and state.open_wave.started_at == WAVE_START
    assert state.last_fed == datetime(2026, 11, 20, 11, 55, tzinfo=UTC)
    assert state.detector is not None and state.detector["episode"] is not None
    assert state.owner == "daemon-1"

    del first  # "restart": a new process knows only what Elasticsearch holds
    again = engine(acme_wave, es_client, slack, owner="daemon-2")
    assert again.check(NOW) == []
    assert again.check(NOW + timedelta(minutes=10)) == []
    assert len(slack.messages) == 1
    # The second check copied the wave's Slack thread into the brand state.
    wave_state = store.load_brand("Acme").open_wave
    assert wave_state is not None and wave_state.thread_ts == slack.messages[0].ts


def test_slack_outage_keeps_the_alert_and_delivers_it_once_later(es_client, slack, acme_wave):
    eng = engine(acme_wave, es_client, slack)
    with slack.outage(503):
        assert eng.check(NOW) == []
    assert slack.messages == []
    store = AlertStateStore(es_client, acme_wave.elasticsearch.index_prefix)
    [entry] = store.entries()
    assert entry.status == "pending" and entry.attempts == 1
    assert entry.last_error is not None and "HTTP 503" in entry.last_error

    # Still down at the next check: still kept, one more attempt.
    with slack.outage(503):
        assert engine(acme_wave, es_client, slack).check(NOW + timedelta(minutes=1)) == []
    # Back: delivered once, by whichever instance checks next.
    sent = engine(acme_wave, es_client, slack).check(NOW + timedelta(minutes=2))
    assert [a.kind for a in sent] == ["started"]
    assert len(slack.messages) == 1
    [entry] = store.entries()
    assert entry.status == "delivered" and entry.attempts == 3
    assert entry.delivery is not None and entry.delivery.ts == slack.messages[0].ts
    assert engine(acme_wave, es_client, slack).check(NOW + timedelta(minutes=3)) == []
    assert len(slack.messages) == 1


def test_a_continuing_wave_replies_in_the_thread_then_says_back_to_normal(
    es_client, slack, acme_wave, tmp_path
):
    eng = engine(acme_wave, es_client, slack)
    [started] = eng.check(NOW)
    second_hour = WAVE_START + timedelta(hours=1)
    index(
        es_client,
        acme_wave,
        tmp_path,
        wave("Acme", second_hour, 90, "x")
        + background("Acme", second_hour + timedelta(hours=1), NOW + timedelta(hours=4)),
    )

    sent = eng.check(NOW + timedelta(hours=1))
    assert [a.kind for a in sent] == ["continuing"]
    root, reply = slack.messages
    assert reply.thread_ts == root.ts
    assert "Still elevated" in reply.text
    assert sent[0].wave_id == started.wave_id
    assert sent[0].wave_started_at == started.wave_started_at

    # The wave stops at 13:00. The detector's hourly report at 13:55 judges a calm
    # window: no "still elevated" for it, only "back to normal" once it is over.
    sent = engine(acme_wave, es_client, slack).check(NOW + timedelta(hours=3))
    assert [a.kind for a in sent] == ["ended"]
    assert sent[0].wave_id == started.wave_id
    # The usual share comes from before the wave, not from the wave itself.
    assert sent[0].usual_share is not None and sent[0].usual_share < 0.4
    replies = slack.messages[1:]
    assert len(replies) == 2
    assert all(m.thread_ts == root.ts for m in replies)
    ended = replies[-1]
    assert ended.payload.get("reply_broadcast") is True
    assert "Back to normal for Acme" in ended.text
    store = AlertStateStore(es_client, acme_wave.elasticsearch.index_prefix)
    state = store.load_brand("Acme")
    assert state.open_wave is None
    assert state.cooldown_until is not None and state.cooldown_until > NOW + timedelta(hours=2)
    # Rendered as a person would read the channel: one message, two replies under it.
    assert slack.render().count("    ┃ ── #brand-alerts") == len(replies)


def test_a_reply_waits_for_its_root_message(es_client, slack, acme_wave, tmp_path):
    eng = engine(acme_wave, es_client, slack)
    second_hour = WAVE_START + timedelta(hours=1)
    index(es_client, acme_wave, tmp_path, wave("Acme", second_hour, 90, "x"))
    with slack.outage(503):
        eng.check(NOW)
        eng.check(NOW + timedelta(hours=1))  # continuing is enqueued behind the started
    assert slack.messages == []
    sent = eng.retry_outbox(NOW + timedelta(hours=1, minutes=1))
    assert [a.kind for a in sent] == ["started", "continuing"]
    root, reply = slack.messages
    assert reply.thread_ts == root.ts


def test_dry_run_reports_without_writing_or_sending(es_client, slack, acme_wave):
    eng = engine(acme_wave, es_client, slack)
    planned = eng.dry_run(NOW)
    assert [(a.kind, a.brand) for a in planned] == [("started", "Acme")]
    assert slack.messages == []
    assert not es_client.indices.exists(index=state_index(acme_wave.elasticsearch.index_prefix))
    # The real check then produces the same alert (same id).
    assert [a.alert_id for a in eng.check(NOW)] == [planned[0].alert_id]


def test_no_alert_without_a_wave(es_client, slack, prefix, tmp_path):
    config = make_config(prefix, slack)
    index(es_client, config, tmp_path, background("Acme", NOW - timedelta(days=3), NOW))
    eng = engine(config, es_client, slack)
    assert eng.check(NOW) == []
    assert eng.check(NOW + timedelta(hours=2)) == []
    assert slack.messages == []


def test_high_reach_mention_alerts_once(es_client, slack, prefix, tmp_path):
    config = make_config(prefix, slack)
    star = mention(
        "Acme", NOW - timedelta(minutes=30), "negative", "star", reach=2_000_000, author="celebrity"
    )
    calm = mention("Acme", NOW - timedelta(minutes=20), "positive", "calm", reach=3_000_000)
    index(
        es_client, config, tmp_path, [*background("Acme", NOW - timedelta(days=3), NOW), star, calm]
    )

    sent = engine(config, es_client, slack).check(NOW)
    assert [(a.kind, a.top_posts[0].id) for a in sent] == [("high_reach", star.id)]
    assert "celebrity" in slack.messages[0].text and "2,000,000" in slack.messages[0].text
    assert engine(config, es_client, slack).check(NOW + timedelta(minutes=5)) == []
    # Re-crawled (same id, new engagement): still not alerted again.
    index(es_client, config, tmp_path, [star.model_copy(update={"text": "edited"})])
    assert engine(config, es_client, slack).check(NOW + timedelta(minutes=10)) == []
    assert len(slack.messages) == 1


def test_a_brands_alert_goes_out_before_the_next_brand_is_checked(es_client, slack, prefix, tmp_path):
    """With many brands a check pass takes long: an alert must not wait for the rest of
    the pass (bench/capacity.py: 50 brands, the burst's alert queued at the pass's start
    reached Slack when the whole pass was over, 111 s later)."""
    config = make_config(prefix, slack)  # brands in order: Acme, then Tiny
    posts = [mention(brand, NOW - timedelta(minutes=30), "negative", f"loud-{brand}",
                     reach=2_000_000, author=f"critic-of-{brand}") for brand in ("Acme", "Tiny")]  # fmt: skip
    index(es_client, config, tmp_path, posts)
    store = AlertStateStore(es_client, prefix)
    tiny_checked_when_posted: dict[str, bool] = {}

    def on_message(message) -> None:
        brand = "Acme" if "critic-of-Acme" in message.text else "Tiny"
        tiny_checked_when_posted[brand] = store.load_brand("Tiny").updated_at == NOW

    slack.on_message = on_message
    sent = engine(config, es_client, slack).check(NOW)
    assert sorted(a.top_posts[0].id for a in sent) == sorted(p.id for p in posts), "each once"
    assert tiny_checked_when_posted == {"Acme": False, "Tiny": True}, (
        "Acme's alert was posted before Tiny was checked, Tiny's right after its own check"
    )
    assert len(slack.messages) == 2
    assert engine(config, es_client, slack).check(NOW + timedelta(minutes=5)) == []


def test_claims_and_enqueues_are_exclusive(es_client, slack, acme_wave):
    """What keeps two daemons from both sending: create-only enqueue, conditional claim."""
    store = AlertStateStore(es_client, acme_wave.elasticsearch.index_prefix)
    [alert] = engine(acme_wave, es_client, slack).dry_run(NOW)
    install(es_client, acme_wave.elasticsearch.index_prefix)
    entry = OutboxEntry(alert=alert, status="pending", created_at=NOW)
    assert store.enqueue(entry) is True
    assert store.enqueue(entry) is False
    read = store.get_entry(alert.alert_id)
    assert read is not None
    store.claim(read, "daemon-1", NOW, NOW + SEND_LEASE)
    with pytest.raises(StateConflict):
        store.claim(read, "daemon-2", NOW, NOW + SEND_LEASE)  # stale read: daemon-1 won


def test_an_abandoned_claim_is_resent_after_its_lease(es_client, slack, acme_wave):
    """A daemon that crashed mid-send: nobody touches it during the lease, then it goes out."""
    eng = engine(acme_wave, es_client, slack)
    with slack.outage(503):
        eng.check(NOW)
    store = AlertStateStore(es_client, acme_wave.elasticsearch.index_prefix)
    [entry] = store.undelivered()
    store.claim(entry, "crashed-daemon", NOW, NOW + SEND_LEASE)

    assert eng.retry_outbox(NOW + SEND_LEASE - timedelta(seconds=1)) == []
    assert slack.messages == []
    assert [a.kind for a in eng.retry_outbox(NOW + SEND_LEASE + timedelta(seconds=1))] == [
        "started"
    ]
    assert len(slack.messages) == 1


def test_rate_limit_longer_than_the_bound_defers_to_retry_after(es_client, slack, acme_wave):
    notifier = SlackNotifier.from_config(acme_wave.slack, max_retry_wait=5, sleep=lambda s: None)
    eng = AlertEngine(acme_wave, es_client, notifier)
    slack.rate_limit_next(retry_after=120)
    assert eng.check(NOW) == []
    assert eng.retry_outbox(NOW + timedelta(seconds=60)) == []  # Slack asked for 120 s
    assert [r.status for r in slack.requests] == [429]
    assert len(eng.retry_outbox(NOW + timedelta(seconds=121))) == 1
    assert len(slack.messages) == 1


@pytest.mark.parametrize(("history_scope", "messages"), [(True, 1), (False, 2)])
def test_a_crash_after_slack_took_the_message(es_client, prefix, tmp_path, history_scope, messages):
    """A daemon posts, then dies before recording it. With history access the next one
    finds the message (its metadata carries the alert id) and does not post again;
    without, it posts again: the documented at-least-once case."""
    with SlackSandbox(history_scope=history_scope) as slack:
        config = make_config(prefix, slack)
        start = NOW - timedelta(days=3)
        index(
            es_client,
            config,
            tmp_path,
            background("Acme", start, WAVE_START) + wave("Acme", WAVE_START, 80, "w"),
        )
        eng = engine(config, es_client, slack)
        [alert] = eng.dry_run(NOW)
        store = AlertStateStore(es_client, prefix)
        store.install()
        store.enqueue(OutboxEntry(alert=alert, status="pending", created_at=NOW))
        entry = store.get_entry(alert.alert_id)
        assert entry is not None
        store.claim(entry, "doomed-daemon", NOW, NOW + SEND_LEASE)
        SlackNotifier.from_config(config.slack).send(alert)  # ...and the daemon dies here

        assert eng.retry_outbox(NOW + SEND_LEASE / 2) == []  # its lease still holds
        eng.retry_outbox(NOW + SEND_LEASE + timedelta(seconds=1))
        assert len(slack.messages) == messages
        done = store.get_entry(alert.alert_id)
        assert done is not None and done.status == "delivered" and not done.maybe_posted
        assert done.delivery is not None and done.delivery.ts == slack.messages[-1].ts


def test_a_5xx_after_slack_took_the_message_is_not_posted_twice(es_client, slack, acme_wave):
    slack.fail_next(1, status=502, after_posting=True)
    eng = engine(acme_wave, es_client, slack)
    assert eng.check(NOW) == []
    store = AlertStateStore(es_client, acme_wave.elasticsearch.index_prefix)
    [entry] = store.entries()
    assert entry.status == "pending" and entry.maybe_posted
    eng.check(NOW + timedelta(minutes=1))
    assert len(slack.messages) == 1
    [entry] = store.entries()
    assert entry.status == "delivered" and entry.delivery is not None
    assert entry.delivery.ts == slack.messages[0].ts


def test_prune_forgets_old_delivered_alerts_only(es_client, slack, acme_wave):
    eng = engine(acme_wave, es_client, slack)
    store = AlertStateStore(es_client, acme_wave.elasticsearch.index_prefix)
    with slack.outage(503):
        eng.check(NOW)
    far = NOW + timedelta(days=30)
    assert eng.prune(far) == 0  # undelivered: kept however old
    eng.retry_outbox(NOW + timedelta(minutes=1))
    assert eng.prune(NOW + timedelta(days=2)) == 0  # alerts.history is 3 days here
    assert eng.prune(NOW + timedelta(days=3, minutes=2)) == 1
    assert store.entries() == []
    assert len(slack.messages) == 1


def test_high_reach_judges_each_brands_own_sentiment(es_client, slack, prefix, tmp_path):
    from brandpulse.mention import BrandSentiment

    config = make_config(prefix, slack)

    def own(brand: str, label: str, *, uncertain: bool = False) -> BrandSentiment:
        neg, neu, pos = LABEL_SCORES[label]
        return BrandSentiment(brand=brand, label=label, negative=neg, neutral=neu,  # type: ignore[arg-type]
                              positive=pos, confidence=0.4 if uncertain else 0.9,
                              uncertain=uncertain, source="clause")

    # Praises Acme, attacks Tiny; the post as a whole reads positive.
    both = mention("Acme", NOW - timedelta(minutes=30), "positive", "both", reach=2_000_000,
                   author="celebrity").model_copy(update={
                       "brands": ["Acme", "Tiny"],
                       "brand_sentiments": [own("Acme", "positive"), own("Tiny", "negative")]})
    # Negative, but a coin flip: not alerted.
    flip = mention("Acme", NOW - timedelta(minutes=25), "negative", "flip", reach=3_000_000)
    flip = flip.model_copy(update={"brand_sentiments": [own("Acme", "negative", uncertain=True)]})
    index(es_client, config, tmp_path,
          [*background("Acme", NOW - timedelta(days=3), NOW), both, flip])

    sent = engine(config, es_client, slack).check(NOW)
    assert [(a.kind, a.brand, a.top_posts[0].id) for a in sent] == [
        ("high_reach", "Tiny", both.id)]


class _WatchedAuthor(AlertRule):
    """A rule added the documented way: one class, one registry entry (here `rules=`)."""

    name = "watched_author"
    settings_model = HighReachSettings

    @classmethod
    def settings_for(cls, config: Config, brand: str) -> HighReachSettings:
        return HighReachSettings()

    def evaluate(self, check: Check, state: dict | None) -> Evaluation:
        seen = set((state or {}).get("seen", []))
        posts = check.reader.by_reach(
            check.brand, check.now - timedelta(hours=2), check.now, sentiment="negative"
        )
        new = [m for m in posts if m.author == "bigcritic" and m.id not in seen]
        planned = [
            Planned(
                Alert(
                    kind="high_reach",
                    brand=check.brand,
                    wave_id=m.id,
                    interval_start=m.created_at,
                    interval_end=m.created_at,
                    observed=1,
                    expected=0.0,
                    signal="reach",
                    top_posts=(m,),
                )
            )
            for m in new
        ]
        return Evaluation(planned, {"seen": sorted(seen | {m.id for m in new})})


def test_the_engine_runs_the_rules_it_is_given_over_the_reader_it_is_given(
    es_client, prefix, slack
):
    # No mention is in Elasticsearch: what the rule sees comes from the reader; its
    # state and the outbox are in Elasticsearch as for the built-in rules.
    config = make_config(prefix, slack)
    post = mention("Acme", NOW - timedelta(minutes=30), "negative", "k1", author="bigcritic")
    reader = MemoryMentionReader([post, mention("Acme", NOW, "negative", "k2")])
    run = engine(config, es_client, slack, reader=reader, rules={"watched_author": _WatchedAuthor})

    sent = run.check(NOW)
    assert [(a.kind, a.brand, a.wave_id) for a in sent] == [("high_reach", "Acme", post.id)]
    assert len(slack.messages) == 1 and "bigcritic" in slack.render()
    state = AlertStateStore(es_client, prefix).load_brand("Acme")
    assert state.rule_state("watched_author") == {"seen": [post.id]}
    assert state.detector is None and state.high_reach is None  # only the given rules ran

    assert run.check(NOW + timedelta(minutes=5)) == []
    assert len(slack.messages) == 1


def test_a_volume_wave_pages_with_the_widest_posts_of_any_sentiment(
    es_client, slack, prefix, tmp_path
):
    # The reader's posts of any sentiment (by_reach with sentiment None) from the index:
    # a wave of neutral mentions is no negative spike, but the volume rule sees it.
    config = make_config(prefix, slack, rules={"volume_spike": {"enabled": True}})
    start = NOW - timedelta(days=3)
    loud = [
        mention("Acme", WAVE_START + timedelta(minutes=20), "neutral", "news", reach=900_000),
        mention("Acme", WAVE_START + timedelta(minutes=30), "positive", "fan", reach=800_000),
    ]
    index(
        es_client,
        config,
        tmp_path,
        background("Acme", start, WAVE_START + timedelta(hours=1))
        + [
            mention("Acme", WAVE_START + i * timedelta(seconds=40), "neutral", f"nw{i}")
            for i in range(90)
        ]
        + loud,
    )
    sent = engine(config, es_client, slack).check(NOW)
    assert [(a.rule, a.kind) for a in sent] == [("volume_spike", "started")]
    [alert] = sent
    assert [p.id for p in alert.top_posts[:2]] == [loud[0].id, loud[1].id]
    assert alert.observed >= 92
    assert alert.discover_url and "brand_sentiment_keys" not in alert.discover_url
    assert "Volume spike for Acme" in slack.messages[0].text


def test_a_source_gone_silent_is_reported_from_counts_per_source(
    es_client, slack, prefix, tmp_path
):
    # The reader's counts per source (a terms aggregation under the date histogram):
    # hn stops finding Acme at 09:00 while reddit goes on; only hn's silence pages.
    config = make_config(
        prefix,
        slack,
        sources=[{"name": "reddit", "type": "reddit"}, {"name": "hn", "type": "hackernews"}],
        rules={"flatline": {"enabled": True}},
    )
    start, stop = NOW - timedelta(days=3), NOW - timedelta(hours=3, minutes=3)

    def from_source(mentions: list[Mention], source: str) -> list[Mention]:
        return [
            m.model_copy(update={"source_name": source, "source_id": f"{source}-{m.source_id}"})
            for m in mentions
        ]

    mentions = from_source(background("Acme", start, NOW), "reddit") + from_source(
        background("Acme", start, stop), "hn"
    )
    index(es_client, config, tmp_path, mentions)
    run = engine(config, es_client, slack)
    # The same per-source counts as the in-memory reader's, from one aggregation.
    step = timedelta(minutes=5)
    assert run.reader.counts_by_source("Acme", start, NOW, step) == MemoryMentionReader(
        mentions
    ).counts_by_source("Acme", start, NOW, step)

    sent = run.check(NOW)
    assert [(a.rule, a.kind, a.subject) for a in sent] == [("flatline", "started", "hn")]
    assert "No mentions of Acme from source 'hn' since" in slack.messages[0].text
    assert run.check(NOW + timedelta(minutes=5)) == []


def test_a_channel_that_cannot_read_back_gets_a_maybe_posted_alert_again(es_client, acme_wave):
    """The generic webhook (like Teams, WeCom, DingTalk, Feishu) cannot be read back:
    after a 5xx that followed delivery the engine posts again (at least once), with
    the same id, which a receiver deduplicates on."""
    from alerts.notifiers.webhook import WebhookNotifier
    from sandbox.bots import BotSandbox

    with BotSandbox() as bots:
        notifier = WebhookNotifier(url=bots.webhook_url, secret=bots.webhook_secret)
        bots.fail_next(1, status=502, after_posting=True)
        eng = AlertEngine(acme_wave, es_client, notifier)
        assert eng.check(NOW) == []
        store = AlertStateStore(es_client, acme_wave.elasticsearch.index_prefix)
        [entry] = store.entries()
        assert entry.status == "pending" and entry.maybe_posted
        eng.check(NOW + timedelta(minutes=1))
        first, second = bots.messages("webhook")
        assert first.headers["x-brandpulse-id"] == second.headers["x-brandpulse-id"] == entry.alert_id
        [entry] = store.entries()
        assert entry.status == "delivered" and entry.delivery is not None
        assert entry.delivery.notifier == "webhook"
