"""RSS 2.0, RSS 1.0 (RDF) and Atom feeds, including news-search feeds built from brand queries.

Each configured feed URL is one query. A URL containing `{query}` is a search feed
(e.g. a news search `.../rss/search?q={query}+when:1d&hl=en-US`): it is fetched once
per brand with `{query}` replaced by the brand's boolean search string, URL-encoded.
Feed URLs without a scheme are taken relative to `base_url`.

Feeds come in every encoding and state of repair. Bytes go to lxml, which decodes
them as the XML declaration says (windows-1252 and ISO-8859-1 feeds are common).
A feed that is not well-formed is counted as a `bad_xml` fault and then parsed
again in lxml's recovery mode, so the items before the damage are kept; an HTML
page where a feed was expected (a consent wall, a captcha, an error page) is a
`not_a_feed` fault. Entities are never resolved and nothing is fetched by the
parser (no XXE).

Per item: id = guid / Atom id (else the link), time = pubDate / dc:date /
published / updated (an item with none is a `bad_item`: without a time it cannot
be placed in the alert windows), author = dc:creator / author / Atom author /
the news item's <source>. Language is only taken from an item's own xml:lang: a
channel's <language> describes the feed, and news-search feeds mix languages.

Incremental: the base's time cursor per feed URL; items at or before the newest
item of the previous crawl are dropped (feeds resend their whole window each time).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote_plus, urljoin, urlsplit

import lxml.etree as etree
from scrapy.http import Request, Response

from brandpulse.config import RssSource
from brandpulse.mention import Mention
from crawlers.spiders.base import MentionSpider, Page, SearchQuery, SourceFault
from crawlers.spiders.social_common import language_code
from crawlers.text import decode_body, html_to_text

ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S)
_EMAIL_NAME = re.compile(r"^\s*\S+@\S+\s*\((.+)\)\s*$")


@dataclass
class FeedItem:
    """One RSS item / Atom entry, as plain values."""

    id: str | None
    url: str | None
    title: str | None
    body: str
    body_is_html: bool
    published: str | None
    author: str | None
    language: str | None


class FeedError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _local(element: Any) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _children(element: Any, *names: str) -> list[Any]:
    return [c for c in element if _local(c) in names]


def _first_text(element: Any, *names: str) -> str | None:
    # Namespace-blind on purpose: feeds put dc:, content:, media: and even the
    # core RSS elements in whatever namespace their generator liked.
    for name in names:
        for child in _children(element, name):
            text = (child.text or "").strip()
            if text:
                return text
    return None


def _atom_text(element: Any | None) -> tuple[str, bool]:
    """(text, is_html) of an Atom text construct (type text, html or xhtml)."""
    if element is None:
        return "", False
    kind = (element.get("type") or "text").lower()
    if kind == "xhtml":
        inner = "".join(etree.tostring(c, encoding="unicode", with_tail=True) for c in element)
        return (element.text or "") + inner, True
    return element.text or "", kind in ("html", "text/html")


def _author_name(value: str | None) -> str | None:
    # RSS 2.0 <author> is "email (Name)"; keep the name, not the address.
    if not value:
        return None
    match = _EMAIL_NAME.match(value)
    return match.group(1).strip() if match else value.strip()


_LEADING_JUNK = re.compile(rb"^(?:\xef\xbb\xbf|[ \t\r\n])+")


def strip_leading_junk(body: bytes) -> bytes:
    """The feed without UTF-8 byte-order marks and whitespace before its first `<`.

    An XML declaration is only valid at the very start; with anything before it
    the strict parser fails and lxml's recovery mode silently deletes every
    `&amp; &lt; &gt;` ("AT&amp;T" becomes "ATT", and the brand no longer matches).
    Only a body that then starts with `<` is changed (a UTF-16 feed keeps its BOM).
    """
    match = _LEADING_JUNK.match(body)
    if match is None or not body[match.end() :].startswith(b"<"):
        return body
    return body[match.end() :]


def parse_feed(body: bytes, url: str) -> tuple[list[FeedItem], str | None]:
    """Items of a feed and a description of its damage (None when well-formed).

    Raises FeedError when the body is not a feed at all.
    """
    if _HTML_START.match(body[:2048]):
        title = re.search(rb"<title[^>]*>(.*?)</title>", body[:8192], re.I | re.S)
        said = decode_body(title.group(1)).strip() if title else "no title"
        raise FeedError("not_a_feed", f"{url} answered an HTML page ({said!r}), not a feed")
    body = strip_leading_junk(body)
    damage = None
    safe = {"resolve_entities": False, "no_network": True, "load_dtd": False}
    try:
        root = etree.fromstring(body, etree.XMLParser(**safe))
    except etree.XMLSyntaxError as exc:
        damage = f"{url} is not well-formed XML ({exc}); kept the items that parse"
        root = etree.fromstring(body, etree.XMLParser(recover=True, **safe))
    if root is None:
        raise FeedError("bad_xml", f"{url}: nothing parseable in the feed ({damage})")
    kind = _local(root)
    if kind == "rss":
        channel = next(iter(_children(root, "channel")), root)
        items = [_rss_item(i, url) for i in _children(channel, "item")]
    elif kind == "RDF":
        items = [_rss_item(i, url) for i in _children(root, "item")]
    elif kind == "feed":
        feed_author = _first_text(next(iter(_children(root, "author")), root), "name")
        items = [_atom_entry(e, url, feed_author) for e in _children(root, "entry")]
    else:
        raise FeedError(
            "not_a_feed", f"{url}: root element <{kind}> is not rss, RDF or an Atom feed"
        )
    return items, damage


def _rss_item(item: Any, feed_url: str) -> FeedItem:
    link = _first_text(item, "link")
    guid_el = next(iter(_children(item, "guid")), None)
    guid = (guid_el.text or "").strip() if guid_el is not None else ""
    if not link and guid and guid_el.get("isPermaLink", "true") != "false" and "://" in guid:
        link = guid
    full = _first_text(item, "encoded")  # content:encoded, the full article
    summary = _first_text(item, "description")
    source = _first_text(item, "source")
    return FeedItem(
        id=guid or link,
        url=urljoin(feed_url, link) if link else None,
        title=_first_text(item, "title"),
        body=full or summary or "",
        body_is_html=True,
        published=_first_text(item, "pubDate", "date", "published", "updated"),
        author=_author_name(_first_text(item, "creator", "author")) or source,
        language=item.get(XML_LANG),
    )


def _atom_entry(entry: Any, feed_url: str, feed_author: str | None) -> FeedItem:
    href = None
    for link in _children(entry, "link"):
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            href = link.get("href")
            break
    base = entry.base or feed_url  # xml:base, inherited, else the feed's own URL
    title, title_html = _atom_text(next(iter(_children(entry, "title")), None))
    content = next(iter(_children(entry, "content")), None)
    if content is None or content.get("src"):
        content = next(iter(_children(entry, "summary")), None)
    body, body_html = _atom_text(content)
    author = _first_text(next(iter(_children(entry, "author")), entry), "name") or feed_author
    return FeedItem(
        id=_first_text(entry, "id") or href,
        url=urljoin(base, href) if href else None,
        title=html_to_text(title) if title_html else title.strip() or None,
        body=body,
        body_is_html=body_html,
        published=_first_text(entry, "published", "updated"),
        author=author,
        language=entry.get(XML_LANG),
    )


class RssSpider(MentionSpider):
    name = "rss"
    source_type = "rss"
    source_model = RssSource
    expects_json = False
    newest_first = False  # one page per feed, in no guaranteed order
    default_requests_per_minute: ClassVar[float] = 20.0

    def check_credentials(self) -> str | None:
        if not self.source.feeds:
            return "no feeds configured"
        return None

    def egress_urls(self) -> list[str]:
        return [*super().egress_urls(), *(self._feed_url(f) for f in self.source.feeds)]

    def _feed_url(self, feed: str) -> str:
        return feed if urlsplit(feed).scheme else urljoin(self.base_url + "/", feed.lstrip("/"))

    def search_queries(self) -> list[SearchQuery]:
        queries = []
        for feed in self.source.feeds:
            url = self._feed_url(feed)
            if "{query}" in feed:
                for name, query in self.brand_queries:
                    text = query.search_string(style="boolean")
                    queries.append(
                        self.make_query(
                            f"feed:{feed}|brand:{name}", name, text,
                            url=url.replace("{query}", quote_plus(text)),
                        )
                    )  # fmt: skip
            else:
                queries.append(self.make_query(f"feed:{feed}", None, feed, url=url))
        return queries

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        return Request(query.params["url"], headers={"Accept": _ACCEPT})

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        try:
            items, damage = parse_feed(response.body, response.url)
        except FeedError as exc:
            raise SourceFault(exc.kind, exc.detail) from exc
        if damage:
            # Counted and logged, but what parsed is kept and the cursor advances:
            # refetching a broken feed would not mend it.
            self.fault("bad_xml", damage)
        return Page(items)

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        item: FeedItem = raw
        if not item.published:
            raise ValueError(
                f"feed item {item.title or item.url or item.id!r} has no date "
                "(pubDate, dc:date, published or updated)"
            )
        source_id = item.id or item.url
        if not source_id:
            digest = hashlib.sha1(f"{item.title}\x1f{item.published}".encode()).hexdigest()
            source_id = f"sha1:{digest[:24]}"
        return self.make_mention(
            source_id=source_id,
            created_at=item.published,
            title=item.title,
            text=item.body,
            html=item.body_is_html,
            url=item.url,
            author=item.author,
            language=language_code(item.language),
        )
