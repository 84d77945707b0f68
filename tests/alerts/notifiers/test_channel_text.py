"""The rules every channel applies to untrusted text and links (alerts.notifiers.text)."""

from __future__ import annotations

import json

import pytest

from alerts.notifiers.digest import alert_digest
from alerts.notifiers.email_templates import html_body, safe_url
from alerts.notifiers.slack_templates import build_message
from alerts.notifiers.text import clean_url, clip, one_line, untrusted


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://trusted.example@evil.example/p", "https://evil.example/p"),
        ("HTTPS://Example.COM:8443/a b", "https://example.com:8443/a%20b"),
        ("https://ex\u202eample.com/x", "https://example.com/x"),
        ("https://[::1]:8080/x", "https://[::1]:8080/x"),
        ("javascript:alert(1)", None),
        ("data:text/html,<b>x</b>", None),
        ("https:///no-host", None),
        ("http://[::1", None),
        ("", None),
        (None, None),
    ],
)
def test_a_link_is_http_with_a_host_and_goes_where_it_says(url, expected):
    assert clean_url(url) == expected


def test_a_link_is_never_rewritten_like_text():
    # Text loses its long symbol runs (`untrusted`); a link must keep them, or it
    # leads somewhere else (the e-mail channel used to shorten "----" in a path).
    url = "https://forum.example/t/acme----refund!!!!/12?s=~~~~"
    assert untrusted(url) != url
    assert clean_url(url) == url


def test_every_channel_links_a_post_to_the_same_place(make_alert, make_post):
    url = "https://forum.example/t/acme----refund/12?a=1&b=2"
    alert = make_alert(top_posts=(make_post(0, url=url),))

    assert alert_digest(alert).posts[0].url == url
    assert safe_url(url) == (url, "forum.example")
    assert f'href="{url.replace("&", "&amp;")}"' in html_body(alert)
    blocks = json.dumps(build_message(alert)["blocks"], ensure_ascii=False)
    assert f"<{url.replace('&', '&amp;')}|" in blocks


def test_clip_and_one_line():
    assert clip("abcdef", 6) == "abcdef"
    assert clip("abc def", 5) == "abc…"
    assert one_line("  a\n\tb  c ") == "a b c"
