"""A spike alert says what drives the wave: its themes, from posts as people write them.

The wave below is two clearly different complaints, written as posts are (varied words,
typos of tone, emoji, Chinese without spaces): data lost after an app update, and
support that keeps people waiting. The rule, fed through `MemoryMentionReader`, must
carry both as themes with fitting labels, in English and in Chinese, on the first alert
and on the thread's "still elevated" update; a wave of a handful of posts gets none.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from alerts.model import Alert
from alerts.rules import Check, NegativeSpikeRule
from alerts.themes import wave_themes
from brandpulse.mention import BrandSentiment, Mention
from nlp.enrich import brand_queries
from tests.alerts.memory_reader import MemoryMentionReader
from tests.alerts.test_engine import NOW, WAVE_START, background, engine, index, mention
from tests.alerts.test_engine import make_config as engine_config
from tests.alerts.test_engine import prefix as prefix  # fixtures of the end-to-end test
from tests.alerts.test_engine import slack as slack
from tests.alerts.test_rules import make_config

DATA_LOSS_EN = [
    "Updated the Acme app last night and every note I had is gone. Years of data lost.",
    "After the 4.2 update Acme wiped my whole photo library. Where is my data??",
    "The latest Acme update deleted all the files in my synced folder, no warning at all",
    "Installed the Acme update this morning, my backups disappeared. Data loss is not ok",
    "Acme app update erased my contacts and calendar. Lost everything 😡",
    "PSA: don't install the new Acme update, it deletes your saved files",
    "Since the update Acme shows an empty library, all my photos and videos lost",
    "Acme's update corrupted my data, half my documents won't open and the rest are gone",
    "My files vanished after updating Acme. Restoring from backup fails too.",
    "The Acme update lost two years of my notes. How does an update delete user data?",
]
SUPPORT_EN = [
    "Been on hold with Acme support for 3 hours now. Nobody picks up the phone.",
    "Acme customer service says the wait time is 90 minutes. Absolutely ridiculous.",
    "Opened a support ticket with Acme 5 days ago and still no reply from anyone",
    "Acme support chat has had me waiting in the queue for two hours",
    "Called Acme customer support four times today, on hold every time, no answer",
    "Still waiting for Acme support to answer my ticket. A week of silence.",
    "Acme's support line: 'your call is important to us'. 2 hours on hold.",
    "No one at Acme customer service replies to emails or tickets, the wait is endless",
]
DATA_LOSS_ZH = [
    "阿克米更新之后我手机里的照片全部丢失了，几年的数据就这么没了",
    "昨晚升级了阿克米，早上起来所有文件都被删除了",
    "阿克米这次更新把我的备忘录和通讯录全清空了，数据丢失找不回来",
    "千万别更新阿克米！更新完相册里的照片全没了",
    "阿克米更新后数据丢失，备份也恢复不了，太坑了",
    "更新阿克米以后文件打不开，一半的数据都丢失了",
    "阿克米升级把我的聊天记录和照片都删除了，怎么找回数据？",
    "阿克米新版本更新导致我的文件全部丢失，没有任何提示",
    "阿克米更新完云端照片丢失，几千张照片没了",
    "刚更新阿克米，所有备份数据都删除了，气死了",
]
SUPPORT_ZH = [
    "阿克米客服电话打了一个小时都没人接，排队排到绝望",
    "给阿克米客服发了五封邮件，一个星期了都没有回复",
    "阿克米在线客服排队两个小时，还是没有人工客服回复",
    "打阿克米客服电话一直占线，等了三个小时都没人接听",
    "阿克米的客服让我等回复，等了一周还是没有消息",
    "阿克米人工客服永远在排队，电话根本打不通",
    "联系阿克米客服三天了，工单一直没人处理也没有回复",
    "阿克米客服电话等待时间九十分钟，太离谱了",
]
KINDS = {
    "en": (DATA_LOSS_EN, SUPPORT_EN),
    "zh": (DATA_LOSS_ZH, SUPPORT_ZH),
}
# Words a reader would accept as naming each complaint.
DATA_WORDS = {
    "en": {"update", "data", "lost", "deleted", "files", "photos", "notes", "backup", "backups"},
    "zh": {"更新", "数据", "丢失", "照片", "删除", "文件", "升级", "备份"},
}
SUPPORT_WORDS = {
    "en": {"support", "hold", "wait", "waiting", "ticket", "customer", "service", "queue", "phone"},
    "zh": {"客服", "电话", "排队", "回复", "人工", "等待", "没人接"},
}


def _words(label: str) -> set[str]:
    return {w for term in label.split(" · ") for w in re.split(r"\s+", term)}


def wave_posts(language: str, data_loss: int, support: int, *, tag: str = "w") -> list[Mention]:
    """A wave in the hour from WAVE_START: `data_loss` + `support` negative posts."""
    loss_texts, support_texts = KINDS[language]
    texts = [loss_texts[i % len(loss_texts)] for i in range(data_loss)]
    texts += [support_texts[i % len(support_texts)] for i in range(support)]
    step = timedelta(hours=1) / len(texts)
    # interleaved in time, as a real wave is
    order = sorted(range(len(texts)), key=lambda i: (i * 7919) % len(texts))
    return [
        mention("Acme", WAVE_START + k * step, "negative", f"{tag}{k}").model_copy(
            update={"title": None, "text": texts[i], "language": language}
        )
        for k, i in enumerate(order)
    ]


def first_alert(reader: MemoryMentionReader, config=None) -> Alert:
    config = config or make_config()
    rule = NegativeSpikeRule.for_brand(config, "Acme")
    check = Check(
        brand="Acme", now=NOW, reader=reader, alerts=config.alerts,
        queries=brand_queries(config.brands),
    )
    [planned] = rule.evaluate(check, None).alerts
    return planned.alert


def negatives_read(alert: Alert, mentions: list[Mention]) -> int:
    """The negative Acme posts the rule read for `alert`: from the wave's start (or the
    window's, if earlier) to the window's end."""
    start = min(alert.interval_start, alert.wave_started_at or alert.interval_start)
    return len([
        m for m in mentions
        if "Acme" in m.brands and start <= m.created_at < alert.interval_end
        and m.sentiment is not None and m.sentiment.label == "negative"
    ])


def assert_both_kinds(alert: Alert, language: str, loss: int, support: int) -> None:
    labels = [t.label for t in alert.themes]
    loss_themes = [t for t in alert.themes if _words(t.label) & DATA_WORDS[language]]
    support_themes = [t for t in alert.themes if _words(t.label) & SUPPORT_WORDS[language]]
    assert loss_themes and support_themes, labels
    # No theme mixes the two complaints: each label names one of them.
    assert not set(loss_themes) & set(support_themes), labels
    assert 0 < sum(t.share for t in alert.themes) <= 1.0
    assert alert.themes == tuple(sorted(alert.themes, key=lambda t: -t.share))
    for t in alert.themes:
        assert t.posts >= 4 and t.share == pytest.approx(t.posts / (loss + support))
    # The larger complaint weighs more (it may come as two themes: "update · data" and
    # "files · deleted" are ways of saying it that share few words).
    assert sum(t.share for t in loss_themes) > sum(t.share for t in support_themes)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_spike_alert_carries_the_waves_two_complaints(language):
    start = NOW - timedelta(days=3)
    reader = MemoryMentionReader(
        background("Acme", start, WAVE_START + timedelta(hours=1))
        + wave_posts(language, 36, 24)
    )
    alert = first_alert(reader)
    assert alert.kind == "started"
    # The wave's 60 posts plus the background's few negatives of that hour were read.
    read = negatives_read(alert, reader.mentions)
    assert 60 < read < 66
    assert_both_kinds(alert, language, 36, read - 36)
    # Stored in the outbox as JSON and read back unchanged.
    assert Alert.from_dict(json.loads(json.dumps(alert.to_dict()))).themes == alert.themes


def test_the_thread_update_carries_the_themes_of_the_whole_wave():
    config = make_config()
    start = NOW - timedelta(days=3)
    first = wave_posts("en", 36, 24)
    # The wave goes on for another hour, as strong and about the same two things.
    second = [
        m.model_copy(update={
            "source_id": m.source_id + "b", "created_at": m.created_at + timedelta(hours=1),
        })
        for m in first
    ]
    reader = MemoryMentionReader(
        background("Acme", start, WAVE_START + timedelta(hours=2)) + first + second
    )
    rule = NegativeSpikeRule.for_brand(config, "Acme")
    state = None
    seen: list[Alert] = []
    for minutes in range(0, 65, 5):
        check = Check(
            brand="Acme", now=NOW + timedelta(minutes=minutes), reader=reader,
            alerts=config.alerts, queries=brand_queries(config.brands),
        )
        result = rule.evaluate(check, state)
        state = json.loads(json.dumps(result.state))
        seen += [p.alert for p in result.alerts]
    kinds = [a.kind for a in seen]
    assert kinds == ["started", "continuing"], kinds
    update = seen[1]
    assert update.wave_id == seen[0].wave_id
    # Read from the wave's start: both hours' posts, not only the last window's.
    read = sum(t.posts for t in update.themes)
    assert read > 60
    assert_both_kinds(update, "en", 72, negatives_read(update, reader.mentions) - 72)


def test_the_engine_reads_the_wave_from_elasticsearch_and_slack_shows_its_themes(
    es_client, prefix, slack, tmp_path
):
    # End to end: mentions in the real node, MentionReader.newest over the alias, the
    # rule, the outbox, the Slack sandbox.
    config = engine_config(prefix, slack)
    start = NOW - timedelta(days=3)
    mentions = background("Acme", start, WAVE_START + timedelta(hours=1)) + wave_posts("en", 36, 24)
    index(es_client, config, tmp_path, mentions)
    [alert] = engine(config, es_client, slack).check(NOW)
    assert alert.kind == "started"
    assert_both_kinds(alert, "en", 36, negatives_read(alert, mentions) - 36)
    [message] = slack.messages
    summary = message.blocks[1]["text"]["text"]
    line = next(part for part in summary.split("\n") if part.startswith("Mostly: "))
    for theme in alert.themes:
        assert f"{theme.label} ({theme.share:.0%})" in line
    assert "Mostly: " in slack.render()


def test_a_multi_brand_post_counts_by_its_clauses_about_the_brand():
    # "Globex support is slow" in a post attacking Acme's update must not make Acme a
    # support theme: the theme reads the clauses about Acme only.
    posts = [
        m.model_copy(update={
            "brands": ["Acme", "Globex"],
            "text": m.text + " Meanwhile Globex support answered my ticket in minutes.",
            "brand_sentiments": [
                BrandSentiment(brand="Acme", label="negative", negative=0.9, neutral=0.05,
                               positive=0.05, source="clause"),
                BrandSentiment(brand="Globex", label="positive", negative=0.05, neutral=0.05,
                               positive=0.9, source="clause"),
            ],
        })
        for m in wave_posts("en", 30, 0)
    ]
    config = make_config()
    config = config.model_copy(update={"brands": [*config.brands, config.brands[0].model_copy(
        update={"name": "Globex"})]})
    themes = wave_themes(posts, "Acme", queries=brand_queries(config.brands))
    assert themes
    for t in themes:
        assert _words(t.label) & DATA_WORDS["en"], t.label
        assert not _words(t.label) & {"globex", "ticket", "minutes", "answered"}, t.label


def test_too_few_posts_give_no_themes():
    few = wave_posts("en", 4, 3)
    assert wave_themes(few, "Acme") == ()
    # Enough posts but no word in two of them: nothing to group, no nonsense label.
    unique = [
        m.model_copy(update={"text": f"zzq{i}x blorp{i}y"}) for i, m in enumerate(wave_posts("en", 20, 0))
    ]
    assert wave_themes(unique, "Acme") == ()
    assert wave_themes([], "Acme") == ()
