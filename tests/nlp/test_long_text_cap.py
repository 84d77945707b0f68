"""The per-text cap (`nlp.max_tokens_per_mention`): huge posts are scored on head + tail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brandpulse.config import NlpConfig
from nlp.scorer import SentimentScorer

GOOD = "I love this brand, the staff were wonderful and the product is great. "
BAD = "The product broke after a day and the refund process was a nightmare. "
FILLER = "Log line: service restarted, zero errors, twelve warnings, uptime three days. "


@pytest.fixture(scope="module")
def capped(default_model_dir: Path) -> SentimentScorer:
    return SentimentScorer.from_pretrained("default", batch_size=8, max_length=64,
                                           max_tokens=64)


def _tokens(scorer: SentimentScorer, text: str) -> int:
    return len(scorer.encoder.encode([text], special_tokens=False)[0])


def test_a_huge_post_is_scored_as_its_head_and_tail(capped: SentimentScorer) -> None:
    huge = GOOD * 4 + FILLER * 7000 + BAD * 4  # about 0.55 MB
    assert len(huge) > 500_000
    cut = capped.cap_text(huge)
    head, tail = cut.split("\n")
    assert huge.startswith(head) and huge.endswith(tail)
    assert _tokens(capped, head) == 32 and _tokens(capped, tail) == 32
    # The result is exactly that of scoring the head + tail text.
    got = capped.probabilities([huge])[0]
    np.testing.assert_allclose(got, capped.probabilities([cut])[0], atol=1e-6)
    # What the middle says does not matter, the ends do.
    other_middle = GOOD * 4 + BAD * 7000 + BAD * 4
    assert capped.cap_text(other_middle).startswith(head)
    assert capped.score([huge])[0].label == capped.score([GOOD * 4 + FILLER * 50 + BAD * 4])[0].label


def test_texts_within_the_cap_are_untouched(capped: SentimentScorer) -> None:
    short = GOOD + BAD
    assert _tokens(capped, short) <= 64
    assert capped.cap_text(short) == short
    windows, _ = capped._windows([short])
    assert sum(w.weight for w in windows) == _tokens(capped, short)


def test_a_text_just_over_the_cap_is_cut_at_token_boundaries(capped: SentimentScorer) -> None:
    text = GOOD * 3 + BAD * 3  # well over 64 tokens, far under the character pre-cut
    assert 64 < _tokens(capped, text) < 64 * 24
    cut = capped.cap_text(text)
    head, tail = cut.split("\n")
    assert text.startswith(head) and text.endswith(tail)
    assert _tokens(capped, head) == 32 and _tokens(capped, tail) == 32
    windows, _ = capped._windows([text])
    assert sum(w.weight for w in windows) == _tokens(capped, cut)


def test_hostile_input_scores(capped: SentimentScorer) -> None:
    # Whitespace and invisible characters the normaliser drops: fewer tokens, no error.
    texts = ["a" + " " * 600_000 + "b", "\u200b" * 300_000 + "awful", "好" * 400_000]
    results = capped.score(texts)
    assert len(results) == 3
    assert all(abs(r.negative + r.neutral + r.positive - 1) < 1e-6 for r in results)


def test_the_setting_is_honoured(default_model_dir: Path) -> None:
    assert NlpConfig().max_tokens_per_mention == 512
    scorer = SentimentScorer.from_config(NlpConfig(max_tokens_per_mention=100, threads=1))
    assert scorer.max_tokens == 100
    text = GOOD * 20
    head, tail = scorer.cap_text(text).split("\n")
    assert _tokens(scorer, head) == 50 and _tokens(scorer, tail) == 50
    uncapped = SentimentScorer.from_config(NlpConfig(max_tokens_per_mention=None, threads=1))
    assert uncapped.max_tokens is None and uncapped.cap_text(text) == text
