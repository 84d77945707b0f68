"""A site that refuses (login wall, captcha, 412/418) is its own fault, never posts.

Real Scrapy against a local server, with the refusal pages as the sites send them
(fixtures name their sources). A crawl that meets only refusals reads no page, so
it fails the way the daemon reports to the source-health tracker.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.health import HealthTracker
from brandpulse.config import HealthConfig
from crawlers.faults import refusal
from tests.crawlers.conftest import Reply, load_fixture
from tests.crawlers.sources_helpers import BRANDS, LOOKBACK, faults, log_lines

ROBOTS = Reply.fixture("html_forum", "robots.txt", content_type="text/plain")
CLOCK = {"BRANDPULSE_NOW": "2026-11-27T04:00:00+00:00", "LOG_LEVEL": "WARNING"}


def forum(base: str, preset: str, *paths: str):
    return {
        "type": "html_forum",
        "preset": preset,
        "start_urls": [f"{base}{p}" for p in paths],
        "lookback": LOOKBACK,
    }


def test_a_discuz_login_wall_and_its_login_redirect_are_login_required(api_server, crawl, tmp_path):
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    # showmessage('to_login') served in place of the search results (GBK, no charset header)...
    api_server.add(
        "/search.php",
        Reply.fixture("html_forum", "discuz_login_wall_gbk.html", content_type="text/html"),
    )
    # ...and a thread that redirects a guest to the login page.
    api_server.add(
        "/forum.php",
        Reply(status=302, headers={"Location": f"{base}/member.php?mod=logging&action=login"},
              content_type="text/html"),
    )  # fmt: skip
    api_server.add(
        "/member.php",
        Reply.fixture("html_forum", "discuz_login_wall_gbk.html", content_type="text/html"),
    )
    source = forum(base, "discuz_x3", "/search.php?mod=forum&srchtxt=acme",
                   "/forum.php?mod=viewthread&tid=3852692")  # fmt: skip
    result = crawl(source, brands=BRANDS[:1], settings=CLOCK)
    assert result.error is None, result.log
    assert result.mentions == []
    assert faults(result) == {"login_required": 2}
    assert "member.php?mod=logging" in result.stats["fault_examples"]["login_required"] or (
        "您需要先登录才能继续本操作" in result.stats["fault_examples"]["login_required"]
    )
    # Logged once, at WARNING, for the whole crawl.
    lines = log_lines(result.log, "had faults")
    assert len(lines) == 1 and "login_required x2" in lines[0] and "WARNING" in lines[0]
    # Neither refusal counts as a page read: the crawl read nothing...
    assert result.stats["pages"] == 0 and result.read_nothing
    problem = result.problem()
    assert "login_required x2" in problem
    # ...which is what the daemon hands the source-health tracker (daemon.service.crawl_job).
    health = HealthTracker(HealthConfig(source_failures=1), tmp_path / "health",
                           clock=lambda: datetime(2026, 11, 27, 4, 0, tzinfo=UTC))  # fmt: skip
    notices = health.crawl_failed("test-html_forum", problem)
    assert len(notices) == 1 and "login_required" in (notices[0].error or "")


def test_tieba_captcha_page_and_redirect_to_wappass_are_captcha_412_is_blocked(api_server, crawl):
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/f", Reply.fixture("html_forum", "tieba_captcha.html"), when={"kw": "acme"})
    # A redirect to Baidu's captcha host: the egress policy refuses to follow it
    # (another host), and the refusal is still recognised as a captcha.
    api_server.add(
        "/f",
        Reply(status=302, content_type="text/html", headers={
            "Location": "https://wappass.baidu.com/static/captcha/tuxing.html?ak=x&backurl=y"}),
        when={"kw": "globex"},
    )  # fmt: skip
    api_server.add("/f", Reply(status=412, body=b"", content_type="text/html"), when={"kw": "x"})
    source = forum(base, "tieba", "/f?kw=acme&ie=utf-8", "/f?kw=globex&ie=utf-8", "/f?kw=x")
    result = crawl(source, brands=BRANDS, settings=CLOCK)
    assert result.error is None, result.log
    assert result.mentions == []
    assert faults(result) == {"captcha": 2, "blocked": 1}  # 412: as Bilibili's (crawlers.faults)
    assert result.stats["pages"] == 0 and result.read_nothing
    assert not [r for r in api_server.requests if "wappass" in r.path]


def test_a_phpbb_login_form_on_the_search_page_is_login_required(api_server, crawl):
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/search.php", Reply.fixture("html_forum", "phpbb_search_login.html"))
    api_server.add("/viewtopic.php", Reply.fixture("html_forum", "preset_phpbb_viewtopic.html"))
    source = forum(base, "phpbb", "/search.php?keywords={query}&sr=posts", "/viewtopic.php?t=9001")
    result = crawl(source, brands=BRANDS[:1], settings=CLOCK)
    assert result.error is None, result.log
    # The topic page is read (its posts arrive); the search pages are refusals.
    assert len(result.mentions) == 2
    assert set(faults(result)) == {"login_required"}
    assert result.stats["pages"] == 1 and not result.read_nothing


def test_pages_that_merely_mention_a_login_are_not_refusals():
    discuz = load_fixture("html_forum", "preset_discuz_viewthread_gbk.html").decode(
        "gb18030", "replace"
    )
    assert "您需要登录后才可以回帖" in discuz  # the guest reply box under every thread
    assert refusal("https://bbs.example/forum.php?mod=viewthread&tid=1", 200, discuz) is None
    phpbb = load_fixture("html_forum", "phpbb_search_page1.html").decode("utf-8")
    assert refusal("https://f.example/search.php?keywords=acme", 200, phpbb) is None
    assert refusal("https://f.example/x", 200, "您需要登录后才可以查看附件")[0] == "login_required"
    assert refusal("https://f.example/x", 418) == (
        "captcha",
        "https://f.example/x -> 418: an anti-bot challenge",
    )
