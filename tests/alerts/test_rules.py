"""The rule contract and the two registered rules, against mentions held in memory.

The same rules the engine runs on Elasticsearch (tests/alerts/test_engine.py), here fed
through `MemoryMentionReader`: each rule fires on what it watches, stays silent on the
rest, and continues from its own opaque (JSON) state without repeating itself.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from alerts.model import wave_id_for
from alerts.rules import RULES, AlertRule, Check, HighReachRule, NegativeSpikeRule
from alerts.state import BrandState, OpenWave
from brandpulse.config import Config
from brandpulse.mention import BrandSentiment
from tests.alerts.memory_reader import MemoryMentionReader
from tests.alerts.test_engine import NOW, WAVE_START, background, mention, wave


def make_config(**alerts: Any) -> Config:
    # The spike settings of tests/alerts/test_engine.py, so both judge the same data alike.
    return Config.model_validate(
        {
            "brands": [{"name": "Acme"}, {"name": "Tiny"}],
            "alerts": {
                "history": "3d",
                "query_delay": "2m",
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


def check(config: Config, reader: MemoryMentionReader, brand: str, now: datetime) -> Check:
    return Check(brand=brand, now=now, reader=reader, alerts=config.alerts)


def run(
    name: str, config: Config, reader: MemoryMentionReader, brand: str, now: datetime, state: Any
) -> tuple[list[Any], Any]:
    """One check of one rule, its state passed through JSON as the engine stores it."""
    rule = RULES[name].for_brand(config, brand)
    result = rule.evaluate(check(config, reader, brand, now), state)
    return [p.alert for p in result.alerts], json.loads(json.dumps(result.state))


@pytest.fixture(scope="module")
def acme_wave() -> MemoryMentionReader:
    """Three quiet days of Acme and Tiny, then 80 negative Acme mentions in 11:00-12:00."""
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
    return MemoryMentionReader(
        background("Acme", start, WAVE_START + timedelta(hours=1))
        + wave("Acme", WAVE_START, 80, "w")
        + key_posts
        + tiny
    )


def test_every_registered_rule_keeps_the_contract():
    config = make_config()
    assert list(RULES) == [  # the engine's order
        "negative_spike",
        "high_reach",
        "volume_spike",
        "positive_spike",
        "competitor_negative_spike",
        "sov_shift",
        "flatline",
    ]
    for name, rule_class in RULES.items():
        assert issubclass(rule_class, AlertRule) and rule_class.name == name
        rule = rule_class.for_brand(config, "Acme")
        assert isinstance(rule.settings, rule_class.settings_model)
        if name not in ("negative_spike", "high_reach"):
            # Off until turned on: a disabled rule judges nothing and keeps no state.
            assert rule.settings.enabled is False
            off = rule.evaluate(check(config, MemoryMentionReader(), "Acme", NOW), {"x": 1})
            assert off.alerts == [] and off.state is None
    # A brand's own section wins where the configuration has one.
    own = Config.model_validate(
        {"brands": [{"name": "Acme", "high_reach": {"min_reach": 5}}, {"name": "Tiny"}]}
    )
    assert HighReachRule.for_brand(own, "Acme").settings.min_reach == 5
    assert HighReachRule.for_brand(own, "Tiny").settings.min_reach == 100_000


def test_the_spike_rule_fires_once_on_a_wave_with_its_top_posts(acme_wave):
    config = make_config()
    alerts, state = run("negative_spike", config, acme_wave, "Acme", NOW, None)

    assert [a.kind for a in alerts] == ["started"]
    [alert] = alerts
    assert alert.interval_start == WAVE_START
    assert alert.interval_end == WAVE_START + timedelta(hours=1)
    assert alert.observed >= 80 and alert.expected < 10
    assert [p.author for p in alert.top_posts[:3]] == ["bigcritic", "techblog", "angryfan"]
    assert len(alert.top_posts) == config.alerts.top_posts
    assert alert.discover_url is None  # no Kibana in this configuration
    assert state["last_fed"] == "2026-11-20T11:55:00+00:00"
    assert state["open_wave"]["started_at"] == WAVE_START.isoformat()

    # From its own state, the next checks judge nothing twice and stay silent.
    again, state = run(
        "negative_spike", config, acme_wave, "Acme", NOW + timedelta(minutes=1), state
    )
    assert again == []
    later, _ = run("negative_spike", config, acme_wave, "Acme", NOW + timedelta(minutes=5), state)
    assert later == []


def test_the_spike_rule_stays_silent_on_a_small_brand_and_on_the_quiet_days(acme_wave):
    config = make_config()
    tiny, _ = run("negative_spike", config, acme_wave, "Tiny", NOW, None)
    assert tiny == []  # 6 negatives is a big ratio but below min_count
    before, _ = run("negative_spike", config, acme_wave, "Acme", WAVE_START, None)
    assert before == []


def test_the_high_reach_rule_alerts_once_per_post_by_the_brands_own_sentiment():
    config = make_config(high_reach={"min_reach": 50_000})
    at = NOW - timedelta(hours=2)
    attack = mention("Acme", at, "negative", "big", reach=80_000, author="bigcritic")
    praise = mention("Acme", at, "positive", "fan", reach=90_000)
    small = mention("Acme", at, "negative", "small", reach=49_999)
    old = mention("Acme", NOW - timedelta(hours=25), "negative", "old", reach=200_000)
    # Negative as a post, but what it says about Acme is positive (it attacks Globex).
    mixed = mention("Acme", at, "negative", "mixed", reach=120_000).model_copy(
        update={
            "brands": ["Acme", "Globex"],
            "brand_sentiments": [
                BrandSentiment(
                    brand=b, label=lb, negative=n, neutral=0.05, positive=p, source="clause"
                )
                for b, lb, n, p in (
                    ("Acme", "positive", 0.05, 0.9),
                    ("Globex", "negative", 0.9, 0.05),
                )
            ],
        }
    )
    reader = MemoryMentionReader([attack, praise, small, old, mixed])

    alerts, state = run("high_reach", config, reader, "Acme", NOW, None)
    assert [(a.kind, a.wave_id, a.signal) for a in alerts] == [("high_reach", attack.id, "reach")]
    assert alerts[0].top_posts == (attack,)
    assert alerts[0].interval_start == alerts[0].interval_end == at

    again, state = run("high_reach", config, reader, "Acme", NOW + timedelta(minutes=5), state)
    assert again == []  # remembered in its state
    fresh, _ = run("high_reach", config, reader, "Acme", NOW + timedelta(minutes=5), None)
    assert [a.wave_id for a in fresh] == [attack.id]  # without it, the same post again

    globex = Config.model_validate(
        {"brands": [{"name": "Globex"}], "alerts": {"high_reach": {"min_reach": 50_000}}}
    )
    on_globex, _ = run("high_reach", globex, reader, "Globex", NOW, None)
    assert [a.wave_id for a in on_globex] == [mixed.id]


def test_brand_state_keeps_the_stored_layout_of_the_two_first_rules():
    # What an engine before the rule registry wrote must read as the rules' state, and
    # writing it back must give the same document.
    wave_start = WAVE_START
    doc_state = BrandState(
        brand="Acme",
        detector={"v": 2, "cooldown_until": "2026-11-20T13:00:00+00:00"},
        high_reach={"v": 1, "brand": "Acme", "seen": ["m1"]},
        last_fed=NOW - timedelta(minutes=8),
        cooldown_until=datetime.fromisoformat("2026-11-20T13:00:00+00:00"),
        open_wave=OpenWave("wave-1", wave_start, "started-1", NOW, "C1", "1.2"),
    )
    spike = doc_state.rule_state("negative_spike")
    assert spike is not None and spike["detector"] == doc_state.detector
    rebuilt = BrandState(brand="Acme")
    for name in ("negative_spike", "high_reach"):
        rebuilt = rebuilt.with_rule_state(name, json.loads(json.dumps(doc_state.rule_state(name))))
    assert rebuilt.to_doc() == doc_state.to_doc()
    assert "rules" not in rebuilt.to_doc()

    # A rule without a field of its own is kept under `rules.<name>`.
    other = rebuilt.with_rule_state("flatline", {"silent_since": None})
    assert other.to_doc()["rules"] == {"flatline": {"silent_since": None}}
    assert BrandState.from_hit({"_source": other.to_doc()}).rule_state("flatline") == {
        "silent_since": None
    }
    assert other.with_rule_state("flatline", None).rule_state("flatline") is None
    assert BrandState(brand="Acme").rule_state("negative_spike") is None


def test_the_spike_rule_reports_its_visibility_from_the_reader(acme_wave):
    rule = NegativeSpikeRule.for_brand(make_config(), "Acme")
    assert isinstance(rule, NegativeSpikeRule)
    seen = rule.visibility(check(make_config(), acme_wave, "Acme", WAVE_START))
    assert seen is not None and 2 <= seen.per_hour <= 4  # the background's 2-4 an hour
    # Quiet intervals are history too: a silent brand's smallest wave is the floor.
    silent = rule.visibility(check(make_config(), MemoryMentionReader(), "Acme", WAVE_START))
    assert silent is not None and silent.per_hour == 0 and silent.smallest == 10


# ---------------------------------------------------------------------------
# The rules of alerts.rules, each with its untuned defaults
# ---------------------------------------------------------------------------


def untuned(**rules: Any) -> Config:
    """Acme (ours), Tiny (ours) and Globex (a competitor); only the named rules are on,
    with their defaults and the default detector settings (no `alerts.spike`)."""
    return Config.model_validate(
        {
            "brands": [{"name": "Acme"}, {"name": "Tiny"}, {"name": "Globex", "own": False}],
            "alerts": {
                "history": "3d",
                "rules": {name: {"enabled": True, **over} for name, over in rules.items()},
            },
        }
    )


def quiet_days(*brands: str) -> list[Any]:
    """Three days up to the end of WAVE_START's hour of the steady background, per brand."""
    start = NOW - timedelta(days=3)
    return [m for b in brands for m in background(b, start, WAVE_START + timedelta(hours=1))]


def extra(brand: str, label: str, n: int, tag: str, start: datetime = WAVE_START) -> list[Any]:
    """`n` mentions of `label` spread over the hour from `start`."""
    step = timedelta(hours=1) / n
    return [
        mention(brand, start + i * step, label, f"{tag}{i}", reach=500 + i) for i in range(n)
    ]


def replay(name: str, config: Config, reader: MemoryMentionReader, brand: str,
           start: datetime, end: datetime, state: Any = None,
           step: timedelta = timedelta(minutes=5)) -> list[Any]:
    """Checks every `step` from `start` to `end`, the state passed on through JSON."""
    alerts, at = [], start
    while at <= end:
        found, state = run(name, config, reader, brand, at, state)
        alerts += found
        at += step
    return alerts


def test_the_volume_spike_rule_fires_on_a_wave_of_any_sentiment_and_not_on_noise():
    config = untuned(volume_spike={})
    neutral = quiet_days("Acme") + extra("Acme", "neutral", 90, "nw")
    reader = MemoryMentionReader(neutral)

    alerts, state = run("volume_spike", config, reader, "Acme", NOW, None)
    assert [(a.kind, a.rule) for a in alerts] == [("started", "volume_spike")]
    [alert] = alerts
    assert alert.observed >= 90 and alert.expected < 40
    assert alert.negative_share is None and alert.usual_share is None  # not its business
    assert alert.wave_id != wave_id_for("Acme", alert.wave_started_at or NOW)  # its own wave
    assert alert.top_posts and {p.sentiment.label for p in alert.top_posts} <= {
        "neutral", "positive", "negative"
    }
    # A neutral wave is no negative spike; the volume rule is what sees it.
    negative, _ = run("negative_spike", untuned(), reader, "Acme", NOW, None)
    assert negative == []
    # From its state, nothing twice.
    again, _ = run("volume_spike", config, reader, "Acme", NOW + timedelta(minutes=5), state)
    assert again == []

    # Three days of the same background, judged every 5 minutes of the last day: silent.
    calm = MemoryMentionReader(quiet_days("Acme"))
    assert replay("volume_spike", config, calm, "Acme", NOW - timedelta(hours=20), NOW) == []


def test_the_positive_spike_rule_sees_praise_and_ignores_complaints():
    config = untuned(positive_spike={})
    praise = MemoryMentionReader(quiet_days("Acme") + extra("Acme", "positive", 60, "pw"))
    alerts, state = run("positive_spike", config, praise, "Acme", NOW, None)
    assert [(a.kind, a.rule) for a in alerts] == [("started", "positive_spike")]
    assert {p.sentiment.label for p in alerts[0].top_posts} == {"positive"}
    assert alerts[0].observed >= 60
    # Its wave is its own: not the negative spike's id for the same interval.
    negative_id = wave_id_for("Acme", alerts[0].wave_started_at or NOW)
    assert alerts[0].wave_id != negative_id

    complaints = MemoryMentionReader(quiet_days("Acme") + extra("Acme", "negative", 80, "nw"))
    assert run("positive_spike", config, complaints, "Acme", NOW, None)[0] == []

    # The wave ends: later checks from the state say so once, in its thread.
    later = replay("positive_spike", config, praise, "Acme", NOW + timedelta(minutes=5),
                   NOW + timedelta(hours=4), state)
    assert [a.kind for a in later if a.kind != "continuing"] == ["ended"]
    assert {a.wave_id for a in later} == {alerts[0].wave_id}


def test_spike_rules_take_alerts_spike_then_their_own_section():
    config = Config.model_validate(
        {
            "brands": [{"name": "Acme", "spike": {"min_count": 7}}, {"name": "Tiny"}],
            "alerts": {
                "spike": {"false_alerts_per_month": 3},
                "rules": {"volume_spike": {"enabled": True, "min_ratio": 4}},
            },
        }
    )
    rule = RULES["volume_spike"].for_brand(config, "Acme")
    assert (rule.settings.false_alerts_per_month, rule.settings.min_count) == (3, 7)
    assert rule.settings.min_ratio == 4 and rule.settings.enabled
    assert RULES["positive_spike"].for_brand(config, "Tiny").settings.enabled is False
    assert RULES["negative_spike"].for_brand(config, "Acme").settings.min_ratio == 2


def test_a_competitors_negative_wave_is_told_to_each_own_brand_as_an_opportunity():
    config = untuned(competitor_negative_spike={})
    reader = MemoryMentionReader(
        quiet_days("Acme", "Globex") + extra("Globex", "negative", 80, "gw")
    )
    alerts, state = run("competitor_negative_spike", config, reader, "Acme", NOW, None)
    assert [(a.kind, a.brand, a.subject) for a in alerts] == [("started", "Acme", "Globex")]
    [alert] = alerts
    assert alert.observed >= 80 and alert.rule == "competitor_negative_spike"
    assert alert.top_posts and all(p.brands == ["Globex"] for p in alert.top_posts)
    assert {p.sentiment.label for p in alert.top_posts} == {"negative"}
    assert set(state["competitors"]) == {"Globex"}

    # Tiny is ours too: its own message, in its own thread.
    tiny, _ = run("competitor_negative_spike", config, reader, "Tiny", NOW, None)
    assert [(a.brand, a.subject) for a in tiny] == [("Tiny", "Globex")]
    assert tiny[0].wave_id != alert.wave_id
    # A competitor has no competitors: nothing is judged, nothing kept.
    assert run("competitor_negative_spike", config, reader, "Globex", NOW, None) == ([], None)
    # From its state, nothing twice.
    again, _ = run("competitor_negative_spike", config, reader, "Acme",
                   NOW + timedelta(minutes=5), state)
    assert again == []


def test_the_competitor_rule_is_silent_on_our_own_waves_and_on_noise():
    config = untuned(competitor_negative_spike={})
    own_wave = MemoryMentionReader(
        quiet_days("Acme", "Globex") + extra("Acme", "negative", 80, "aw")
    )
    assert run("competitor_negative_spike", config, own_wave, "Acme", NOW, None)[0] == []
    calm = MemoryMentionReader(quiet_days("Acme", "Globex"))
    assert replay("competitor_negative_spike", config, calm, "Acme",
                  NOW - timedelta(hours=20), NOW) == []


def test_the_competitors_can_be_chosen():
    config = Config.model_validate(
        {
            "brands": [
                {"name": "Acme"},
                {"name": "Globex", "own": False},
                {"name": "Initech", "own": False},
            ],
            "alerts": {
                "history": "3d",
                "rules": {
                    "competitor_negative_spike": {"enabled": True, "competitors": ["Initech"]}
                },
            },
        }
    )
    reader = MemoryMentionReader(
        quiet_days("Acme", "Globex", "Initech")
        + extra("Globex", "negative", 80, "gw")
        + extra("Initech", "negative", 80, "iw")
    )
    alerts, state = run("competitor_negative_spike", config, reader, "Acme", NOW, None)
    assert [a.subject for a in alerts] == ["Initech"]
    assert set(state["competitors"]) == {"Initech"}
    with pytest.raises(ValueError, match="'Acme' is not a configured competitor"):
        Config.model_validate(
            {
                "brands": [{"name": "Acme"}, {"name": "Globex", "own": False}],
                "alerts": {"rules": {"competitor_negative_spike": {"competitors": ["Acme"]}}},
            }
        )


# ---------------------------------------------------------------------------
# flatline
# ---------------------------------------------------------------------------


def from_source(mentions: list[Any], source: str) -> list[Any]:
    return [
        m.model_copy(update={"source_name": source, "source_id": f"{source}-{m.source_id}"})
        for m in mentions
    ]


def test_flatline_reports_a_busy_brands_silence_once_then_its_end():
    config = untuned(flatline={})
    stop = NOW - timedelta(hours=3, minutes=3)  # 09:00: nothing after
    reader = MemoryMentionReader(background("Acme", NOW - timedelta(days=3), stop))
    last = max(m.created_at for m in reader.mentions)  # 09:01, in the 09:00 interval
    alerts = replay("flatline", config, reader, "Acme", stop, NOW + timedelta(minutes=30))
    [alert] = alerts
    assert (alert.kind, alert.rule, alert.subject, alert.observed) == ("started", "flatline", None, 0)
    assert alert.interval_start == alert.wave_started_at == last.replace(minute=5, second=0)
    # Paged as soon as the silence lasted min_silence (an hour): ~9 mentions expected.
    assert alert.interval_end - alert.interval_start == timedelta(hours=1)
    assert 6 < alert.expected < 12

    # Told once; when mentions come back, one reply says so in its thread.
    _, state = run("flatline", config, reader, "Acme", NOW, None)
    assert state["series"][""]["root"] == alert.alert_id
    assert run("flatline", config, reader, "Acme", NOW + timedelta(minutes=5), state)[0] == []
    reader.add([mention("Acme", NOW + timedelta(minutes=20), "neutral", "back")])
    ended, state = run("flatline", config, reader, "Acme", NOW + timedelta(minutes=30), state)
    assert [(a.kind, a.wave_id) for a in ended] == [("ended", alert.wave_id)]
    assert ended[0].interval_end == NOW + timedelta(minutes=20 - 3)  # its 5-minute interval
    assert state == {"series": {}}


def test_flatline_is_silent_on_a_quiet_brand_and_on_a_brands_usual_nights():
    import random

    config = untuned(flatline={})
    rng = random.Random(7)
    start = NOW - timedelta(days=4)
    # Tiny: about one mention every 80 minutes, at random; silent hours are ordinary.
    tiny, t = [], start
    while t < NOW:
        t += timedelta(minutes=rng.expovariate(1 / 80))
        tiny.append(mention("Tiny", t, "neutral", f"q{len(tiny)}"))
    # Acme: 12 an hour from 08:00 to 20:00 UTC, nothing at night.
    acme = [
        mention("Acme", day + timedelta(hours=h, minutes=5 * k), "neutral", f"d{d}h{h}k{k}")
        for d, day in enumerate(start.replace(hour=0, minute=0) + timedelta(days=i) for i in range(5))
        for h in range(8, 20)
        for k in range(12)
        if day + timedelta(hours=h) < NOW
    ]
    reader = MemoryMentionReader(tiny + acme)
    night = datetime(2026, 11, 20, 0, 0, tzinfo=NOW.tzinfo)
    for brand in ("Tiny", "Acme"):
        assert replay("flatline", config, reader, brand, night - timedelta(hours=4),
                      night + timedelta(hours=8), step=timedelta(minutes=15)) == []


def test_flatline_watches_each_source_apart():
    config = Config.model_validate(
        {
            "brands": [{"name": "Acme"}],
            "sources": [
                {"name": "reddit", "type": "reddit"},
                {"name": "hn", "type": "hackernews", "schedule": {"every": "10m"}},
                {"name": "off", "type": "hackernews", "enabled": False},
            ],
            "alerts": {"history": "3d", "rules": {"flatline": {"enabled": True}}},
        }
    )
    rule = RULES["flatline"].for_brand(config, "Acme")
    assert rule.lags == {
        "": timedelta(minutes=10, seconds=30),
        "reddit": timedelta(minutes=5, seconds=30),
        "hn": timedelta(minutes=10, seconds=30),
    }
    start, stop = NOW - timedelta(days=3), NOW - timedelta(hours=3, minutes=3)
    reader = MemoryMentionReader(
        from_source(background("Acme", start, NOW), "reddit")
        + from_source(background("Acme", start, stop), "hn")
    )
    alerts, state = run("flatline", config, reader, "Acme", NOW, None)
    assert [(a.kind, a.subject) for a in alerts] == [("started", "hn")]
    assert alerts[0].interval_start == stop + timedelta(minutes=5)  # after its 09:01 mention
    assert set(state["series"]) == {"hn"}
    assert run("flatline", config, reader, "Acme", NOW + timedelta(minutes=5), state)[0] == []
    # A source the health notices already report as failing is theirs to tell.
    told = Check("Acme", NOW, reader, config.alerts, failing_sources=frozenset({"hn"}))
    assert rule.evaluate(told, None).alerts == []
    # per_source off: only the brand as a whole, which is not silent.
    whole = Config.model_validate(
        config.model_dump(mode="json", exclude_unset=True)
        | {"alerts": {"history": "3d", "rules": {"flatline": {"enabled": True, "per_source": False}}}}
    )
    assert run("flatline", whole, reader, "Acme", NOW, None)[0] == []


# ---------------------------------------------------------------------------
# sov_shift
# ---------------------------------------------------------------------------

DAY = datetime(2026, 11, 19, tzinfo=NOW.tzinfo)  # the day a check at NOW judges


def sov_days(days: int, seed: int, today: tuple[int, int] | None = None) -> MemoryMentionReader:
    """`days` days before DAY (and DAY itself) of about 200 mentions a day, 30% of them
    Acme's and the rest Globex's, at random; `today` = (Acme's, Globex's) on DAY."""
    import random

    rng = random.Random(seed)
    out = []
    for d in range(days, -1, -1):
        day = DAY - d * timedelta(days=1)
        if d == 0 and today is not None:
            acme, globex = today
        else:
            acme = sum(rng.random() < 0.3 for _ in range(200))
            globex = 200 - acme
        for brand, count in (("Acme", acme), ("Globex", globex)):
            step = timedelta(days=1) / max(count, 1)
            out += [
                mention(brand, day + i * step, "neutral", f"{day:%m%d}-{i}", reach=10 + i)
                for i in range(count)
            ]
    return MemoryMentionReader(out)


def test_a_share_of_voice_jump_or_drop_is_reported_once_for_the_day():
    config = untuned(sov_shift={})
    reader = sov_days(14, seed=1, today=(100, 100))  # 50% instead of ~30%
    alerts, state = run("sov_shift", config, reader, "Acme", NOW, None)
    [alert] = alerts
    assert (alert.kind, alert.rule, alert.observed, alert.total) == ("started", "sov_shift", 100, 200)
    assert (alert.interval_start, alert.interval_end) == (DAY, DAY + timedelta(days=1))
    assert 0.27 < alert.expected / alert.total < 0.33  # the usual share
    assert alert.top_posts and all("Acme" in p.brands for p in alert.top_posts)
    assert state == {"last_day": DAY.isoformat()}
    # The same day is judged once; the next one after it has ended (and settled).
    assert run("sov_shift", config, reader, "Acme", NOW + timedelta(hours=5), state)[0] == []
    drop = sov_days(14, seed=1, today=(30, 170))  # 15%
    [down], _ = run("sov_shift", config, drop, "Acme", NOW, None)
    assert down.observed == 30 and down.expected > 50
    # A competitor has no share of voice of its own to watch here.
    assert run("sov_shift", config, reader, "Globex", NOW, None) == ([], None)


def test_share_of_voice_noise_and_thin_days_report_nothing():
    config = untuned(sov_shift={})
    # Ordinary days: each of 20 judged days, against the 14 before it.
    reader = sov_days(34, seed=2)
    for back in range(20):
        now = NOW - back * timedelta(days=1)
        assert run("sov_shift", config, reader, "Acme", now, None)[0] == [], back
    # A day of 20 mentions says nothing, whatever its share.
    thin = sov_days(14, seed=1, today=(15, 5))
    assert run("sov_shift", config, thin, "Acme", NOW, None)[0] == []
    # Nor does a big move of a share that wanders a lot from day to day anyway.
    import random

    rng = random.Random(3)
    wandering = []
    for d in range(14, 0, -1):
        day = DAY - d * timedelta(days=1)
        share = rng.choice((0.2, 0.45))
        for brand, count in (("Acme", int(200 * share)), ("Globex", 200 - int(200 * share))):
            wandering += [
                mention(brand, day + timedelta(minutes=i), "neutral", f"w{d}-{i}")
                for i in range(count)
            ]
    wandering += [mention("Acme", DAY + timedelta(minutes=i), "neutral", f"t{i}") for i in range(90)]
    wandering += [mention("Globex", DAY + timedelta(minutes=i), "neutral", f"u{i}") for i in range(110)]
    assert run("sov_shift", config, MemoryMentionReader(wandering), "Acme", NOW, None)[0] == []


class _CountingReader:
    """The in-memory reader, counting the count reads passed on to it."""

    def __init__(self, inner: MemoryMentionReader) -> None:
        self.inner = inner
        self.count_reads = 0

    def counts(self, *args: Any, **kwargs: Any) -> Any:
        self.count_reads += 1
        return self.inner.counts(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_spike_check_with_no_completed_interval_reads_nothing(acme_wave):
    """Checks a minute apart over 5-minute intervals: only the one after an interval
    completed reads counts (and judges); the others return the state they were given,
    which is what reading and judging nothing new would have returned."""
    config = make_config()
    reader = _CountingReader(acme_wave)
    state = None
    reads = []
    for minute in range(2, 14):
        before = reader.count_reads
        alerts, after = run("negative_spike", config, reader, "Acme",  # type: ignore[arg-type]
                            WAVE_START + timedelta(minutes=minute), state)  # fmt: skip
        if reader.count_reads == before:
            assert alerts == [] and after == state
        reads.append(reader.count_reads - before)
        state = after
    # 11:02 (first check) reads; 11:03-11:06 judge nothing new; 11:07 and 11:12 read
    assert reads == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
