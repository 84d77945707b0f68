from __future__ import annotations

import pytest

from nlp.language import detect_language, detect_languages


@pytest.mark.parametrize(("text", "code"), [
    ("I really love the new camera on this phone", "en"),
    ("这个手机的电池续航非常好", "zh"),
    ("このカメラはとても素晴らしいです", "ja"),
    ("이 제품 정말 마음에 들어요", "ko"),
    ("Me encanta la nueva cámara de este teléfono", "es"),
    ("J'adore le nouvel appareil photo de ce téléphone", "fr"),
    ("Ich liebe die neue Kamera dieses Handys", "de"),
    ("Eu adoro a nova câmera deste telefone", "pt"),
    ("Мне очень нравится новая камера этого телефона", "ru"),
    ("Adoro la nuova fotocamera di questo telefono", "it"),
    ("Ik hou van de nieuwe camera van deze telefoon", "nl"),
])
def test_languages(text: str, code: str) -> None:
    assert detect_language(text) == code


@pytest.mark.parametrize("text", ["", "   ", "ok", "😀😀😀", "123 456", "@acme https://t.co/xyz #win"])
def test_too_short_or_undecidable_is_none(text: str) -> None:
    assert detect_language(text) is None


def test_urls_and_handles_do_not_decide(text: str = "@acme_support https://example.com/x 太差了") -> None:
    assert detect_language(text) == "zh"


def test_batch_matches_single() -> None:
    # How fast a batch is belongs to bench/ (timed assertions fail on a loaded machine).
    texts = ["I love it so much", "这个很好用", "ok", "Das ist wirklich gut"] * 250
    out = detect_languages(texts)
    assert out[:4] == ["en", "zh", None, "de"]
    assert out == [detect_language(t) for t in texts[:4]] * 250
