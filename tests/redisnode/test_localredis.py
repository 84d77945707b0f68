"""The local redis-server the tests and `make redis` use (redisnode)."""

from __future__ import annotations

import socket

import pytest
import redis

from redisnode import LocalRedis, RedisNodeError


def test_a_node_answers_keeps_nothing_on_disk_and_stops(tmp_path):
    node = LocalRedis(work_dir=tmp_path)
    with node:
        client = redis.Redis.from_url(node.url)
        assert client.ping() is True
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        client.close()
        pid = node.pid
    assert not node.running()
    assert pid is not None
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(node.url, socket_connect_timeout=2).ping()


def test_a_taken_port_is_an_error_that_names_it(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(RedisNodeError, match="did not start"):
            LocalRedis(port=port, work_dir=tmp_path, boot_timeout=10).start()


def test_a_port_another_redis_answers_is_not_taken_for_ours(tmp_path):
    # the race a picked port loses: another session's Redis binds it first, and a PING
    # would be answered (by it) while ours is still failing to bind
    with LocalRedis(work_dir=tmp_path / "first") as first:
        late = LocalRedis(port=first.port, work_dir=tmp_path / "late", boot_timeout=10)
        with pytest.raises(RedisNodeError, match="did not start"):
            late.start()
        assert not late.running()
        assert redis.Redis.from_url(first.url).info("server")["process_id"] == first.pid


def test_the_session_fixture_is_a_real_server(redis_node):
    client = redis.Redis.from_url(redis_node.url)
    assert client.ping() is True
    assert int(client.info("server")["redis_version"].split(".")[0]) >= 7
    client.close()
