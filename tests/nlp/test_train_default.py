"""Training settings that need no training: the broad mix's shares with extra data."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from nlp.train_default import DOMAIN_SHARES, domain_shares, extra_training_domains


def _folder(tmp_path: Path) -> Path:
    rows = ["label,text"] + [f"{'positive' if i % 2 else 'negative'},brand tweet {i}" for i in range(40)]
    (tmp_path / "en_brand_tweets.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"share": None, "hold_out": None, "extra_data": None, **kw})


def test_without_extra_data_the_shares_are_the_recipes():
    assert domain_shares(_args()) == DOMAIN_SHARES
    assert extra_training_domains(_args()) == ()


def test_an_extra_domain_needs_its_share_named(tmp_path):
    folder = _folder(tmp_path)
    with pytest.raises(SystemExit, match="en_brand_tweets"):
        domain_shares(_args(extra_data=folder))
    shares = domain_shares(_args(extra_data=folder, share=["en_brand_tweets=0.05"]))
    assert shares["en_brand_tweets"] == 0.05
    assert {k: v for k, v in shares.items() if k != "en_brand_tweets"} == DOMAIN_SHARES
    (domain,) = extra_training_domains(_args(extra_data=folder))
    assert domain.name == "en_brand_tweets" and domain.binary and domain.lang == "en"


def test_an_unknown_share_still_names_the_known_domains(tmp_path):
    with pytest.raises(SystemExit, match=r"unknown domain 'en_nope'.*en_brand_tweets"):
        domain_shares(_args(extra_data=_folder(tmp_path), share=["en_nope=0.1"]))
