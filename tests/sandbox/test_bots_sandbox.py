"""sandbox.bots refuses what the real services refuse, with their codes: raw HTTP
requests a correct notifier never sends (so the notifier tests cannot show it)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote_plus

import pytest

from sandbox.bots import WECOM_MAX_BYTES, BotSandbox


def post(url: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


@pytest.fixture
def bots():
    with BotSandbox(rate_limits={"wecom": 2, "dingtalk": 2}) as sandbox:
        yield sandbox


def test_wecom_codes(bots):
    def markdown(text: str) -> dict:
        return {"msgtype": "markdown", "markdown": {"content": text}}

    assert post(bots.wecom_url.replace("0000", "9999"), markdown("x"))[1]["errcode"] == 93000
    assert post(bots.wecom_url, {"text": "x"})[1]["errcode"] == 40008
    too_long = "字" * (WECOM_MAX_BYTES // 3 + 1)  # 3 bytes each in UTF-8
    assert post(bots.wecom_url, markdown(too_long))[1]["errcode"] == 40058
    assert post(bots.wecom_url, markdown("字" * (WECOM_MAX_BYTES // 3)))[1]["errcode"] == 0
    assert post(bots.wecom_url, markdown("b"))[1]["errcode"] == 0
    assert post(bots.wecom_url, markdown("c"))[1]["errcode"] == 45009  # the third in a minute
    assert len(bots.messages("wecom")) == 2


def _ding_sign(secret: str, ts: int) -> str:
    return base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()).decode()


def test_dingtalk_checks_the_urlencoded_signature(bots):
    secret = bots.dingtalk_secret
    body = {"msgtype": "markdown", "markdown": {"title": "t", "text": "x"}}
    ts = int(time.time() * 1000)
    while "+" not in _ding_sign(secret, ts):  # a sign whose '+' must be URL-encoded
        ts += 1
    sign = _ding_sign(secret, ts)
    unencoded = f"{bots.dingtalk_url}&timestamp={ts}&sign={sign}"
    answer = post(unencoded, body)[1]
    assert answer["errcode"] == 310000 and "sign not match" in answer["errmsg"]
    encoded = f"{bots.dingtalk_url}&timestamp={ts}&sign={quote_plus(sign)}"
    assert post(encoded, body)[1]["errcode"] == 0
    assert post(bots.dingtalk_url, body)[1]["errmsg"] == "invalid timestamp"  # unsigned
    assert post(encoded, {"msgtype": "markdown", "markdown": {"text": "x"}})[1]["errcode"] == 40035
    assert post(encoded, body)[1]["errcode"] == 0
    assert post(encoded, body)[1]["errcode"] == 130101  # the third in a minute


def test_feishu_refuses_bad_requests_and_wrong_signatures(bots):
    ts = int(time.time())
    key = f"{ts}\n{bots.feishu_secret}".encode()
    signed = {"timestamp": str(ts), "sign": base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()}
    card = {"msg_type": "interactive", "card": {"elements": [{"tag": "div", "text": {"tag": "plain_text", "content": "x"}}]}}
    assert post(bots.feishu_url, {**signed, **card}) == (200, {"code": 0, "msg": "success", "data": {}})
    assert post(bots.feishu_url, {**signed, "sign": "AAAA", **card})[1]["code"] == 19021
    bad_tag = {"msg_type": "interactive", "card": {"elements": [{"tag": "script"}]}}
    assert post(bots.feishu_url, {**signed, **bad_tag}) == (400, {"code": 9499, "msg": "Bad Request", "data": {}})
    big = {**signed, "msg_type": "text", "content": {"text": "x" * 21_000}}
    assert post(bots.feishu_url, big)[1]["code"] == 9499
    assert post(bots.feishu_url.replace("hook/0", "hook/9"), card)[1]["code"] == 19001


def test_teams_refuses_what_is_not_an_adaptive_card_message(bots):
    legacy = {"@type": "MessageCard", "text": "x"}
    status, text = post(bots.teams_url, legacy)
    assert status == 400 and text.startswith("Bad payload received by generic incoming webhook.")
    card = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "x" * 30_000}]}}]}  # fmt: skip
    assert post(bots.teams_url, card)[0] == 413
    card["attachments"][0]["content"]["body"][0]["text"] = "x"
    assert post(bots.teams_url, card) == (200, 1)  # the connector's "1"
    assert bots.messages("teams")[0].payload == card


def test_webhook_refuses_a_body_changed_after_signing(bots):
    ts = int(time.time())
    body = json.dumps({"event": "alert", "id": "a"}).encode()
    sig = hmac.new(bots.webhook_secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(bots.webhook_url, data=body.replace(b'"a"', b'"b"'), method="POST",
                                     headers={"X-BrandPulse-Signature": f"t={ts},v1={sig}"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 401
    assert bots.messages() == []
