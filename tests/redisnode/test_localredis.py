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


def test_the_session_fixture_is_a_real_server(redis_node):
    client = redis.Redis.from_url(redis_node.url)
    assert client.ping() is True
    assert int(client.info("server")["redis_version"].split(".")[0]) >= 7
    client.close()
