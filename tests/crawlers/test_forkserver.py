"""crawlers.forkserver: crawls forked from a server that imported Scrapy once.

Real crawls against the local API server, through `crawlers.runner.run_crawl` (the
process's shared server) or a `ForkServer` of the test's own; processes are
inspected in /proc, never mocked.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from brandpulse.config import parse_config
from crawlers import forkserver, runner
from crawlers.forkserver import ForkServer
from crawlers.job import CrawlJob
from crawlers.runner import REPO_ROOT, run_crawl
from tests.crawlers.conftest import TEST_SETTINGS, Reply
from tests.hang import wait_until

HN = "/api/v1/search_by_date"
SE = "/2.3/search/advanced"
BRANDS = [{"name": "Acme", "query": "acme"}]
SECRET = "k-s3cret-4711"
SLOW = {**TEST_SETTINGS, "DOWNLOAD_TIMEOUT": 300, "RETRY_TIMES": 0}


def serve_hn(api_server: Any) -> None:
    api_server.add(HN, Reply.fixture("hackernews", "search_page0.json"), when={"page": "0"})
    api_server.add(HN, Reply.fixture("hackernews", "search_page1.json"), when={"page": "1"})


def job_for(
    api_server: Any, tmp_path: Path, *, start: str = "fork", state: str = "state",
    source: dict[str, Any] | None = None,
) -> CrawlJob:  # fmt: skip
    source = {"type": "hackernews", "name": "hn", **(source or {})}
    config = parse_config({
        "brands": BRANDS,
        "sources": [{"base_url": api_server.base_url, "lookback": "3650d",
                     "requests_per_minute": 60000, **source}],
        "crawl": {"allowed_private_endpoints": [api_server.endpoint], "child_start": start},
    }, env={})  # fmt: skip
    return CrawlJob.from_config(config, source["name"], state_dir=tmp_path / state)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    """Live processes whose parent is `pid`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if proc.name.isdigit() and fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(proc.name))
    return found


def shared_server_pid() -> int:
    server = forkserver.shared_server()
    assert server is not None, "the fork server did not start"
    return server.ready.pid


def test_the_server_imports_scrapy_and_the_crawlers_without_a_reactor_or_a_thread():
    server = ForkServer.start()
    try:
        ready = server.ready
        assert ready.reactor_installed is False and ready.threads == 1
        status = Path(f"/proc/{ready.pid}/status").read_text()
        assert "\nThreads:\t1\n" in status, "checked from outside, too"
        assert ready.modules > 500 and ready.import_cpu_seconds > 0
    finally:
        server.close()
    assert server.proc.returncode == 0, "it exits when its socket closes"
    # What it imports includes the module that used to install the reactor on import.
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from crawlers.forkserver import preload; preload(); "
         "print('crawlers.middlewares' in sys.modules, 'twisted.internet.reactor' in sys.modules)"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert probe.stdout.split() == ["True", "False"], probe.stderr[-2000:]


def test_a_forked_crawl_comes_back_exactly_as_a_spawned_one(api_server, tmp_path, caplog):
    serve_hn(api_server)
    caplog.set_level(logging.DEBUG, logger="crawlers.runner")
    forked = run_crawl(job_for(api_server, tmp_path, state="a"), timeout=60, settings=TEST_SETTINGS)
    assert "forked by the fork server" in caplog.text
    caplog.clear()
    spawned = run_crawl(
        job_for(api_server, tmp_path, start="spawn", state="b"), timeout=60, settings=TEST_SETTINGS
    )
    assert "forked" not in caplog.text
    assert forked.error is None and spawned.error is None, (forked.error, spawned.error)
    assert [m.model_dump(exclude={"collected_at"}) for m in forked.mentions] == [
        m.model_dump(exclude={"collected_at"}) for m in spawned.mentions
    ]
    assert len(forked.mentions) == 3
    assert set(forked.stats) == set(spawned.stats) and forked.stats["yielded"] == 3
    for result in (forked, spawned):
        assert "Spider closed (finished)" in result.log and "[scrapy.core.engine]" in result.log
        assert result.commit_cursor() is True
    cursors = [json.loads((tmp_path / s / "hn.cursor.json").read_text()) for s in "ab"]
    assert cursors[0]["queries"] == cursors[1]["queries"]
    assert not list(tmp_path.glob("*/*pending*"))


def test_no_setting_or_cursor_of_one_crawl_reaches_the_next(api_server, tmp_path):
    serve_hn(api_server)
    first = run_crawl(
        job_for(api_server, tmp_path, state="a"), timeout=60,
        settings={**TEST_SETTINGS, "USER_AGENT": "first-crawl-agent/1"},
    )  # fmt: skip
    assert first.error is None and first.commit_cursor()
    assert {r.headers["user-agent"] for r in api_server.hits(HN)} == {"first-crawl-agent/1"}
    api_server.requests.clear()
    second = run_crawl(job_for(api_server, tmp_path, state="b"), timeout=60, settings=TEST_SETTINGS)
    assert second.error is None and len(second.mentions) == 3, "no cursor of the first crawl"
    agents = {r.headers["user-agent"] for r in api_server.hits(HN)}
    assert len(agents) == 1 and agents.pop().startswith("brandpulse/"), "the project's own agent"
    again = run_crawl(job_for(api_server, tmp_path, state="a"), timeout=60, settings=TEST_SETTINGS)
    assert again.error is None and again.mentions == [], "the first source's own cursor holds"


def test_two_crawls_at_once_each_get_their_own_child(api_server, tmp_path):
    """The daemon runs crawls of several sources in parallel threads, one server."""
    serve_hn(api_server)
    server = shared_server_pid()
    results: dict[str, Any] = {}

    def crawl(state: str) -> None:
        results[state] = run_crawl(job_for(api_server, tmp_path, state=state), timeout=60,
                                   settings=TEST_SETTINGS)  # fmt: skip

    threads = [threading.Thread(target=crawl, args=(state,)) for state in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(results) == ["a", "b"]
    for result in results.values():
        assert result.error is None and len(result.mentions) == 3 and result.commit_cursor()
    assert shared_server_pid() == server and children(server) == []


def test_the_job_goes_on_a_pipe_to_a_child_in_its_own_session_that_cancel_stops(
    api_server, tmp_path
):
    api_server.add(SE, Reply.fixture("stackexchange", "search_page1.json", delay=120))
    job = job_for(
        api_server, tmp_path, source={"type": "stackexchange", "name": "se", "key": SECRET}
    )
    server = shared_server_pid()
    cancel = threading.Event()
    results: list[Any] = []
    crawl = threading.Thread(
        target=lambda: results.append(run_crawl(job, timeout=60, settings=SLOW, cancel=cancel))
    )
    crawl.start()
    try:
        wait_until(lambda: api_server.hits(SE), 60, "the crawl's first request")
        assert api_server.hits(SE)[0].param("key") == SECRET, "the job arrived with its secret"
        (child,) = children(server)
        assert os.getsid(child) == child and os.getpgid(child) == child
        assert os.getsid(child) != os.getsid(server) and os.getsid(child) != os.getsid(0)
        assert os.readlink(f"/proc/{child}/fd/0").startswith("pipe:"), "stdin is a pipe"
        for pid in (child, server):
            for part in ("cmdline", "environ"):
                assert SECRET.encode() not in Path(f"/proc/{pid}/{part}").read_bytes()
    finally:
        cancel.set()
        crawl.join(60)
    assert not crawl.is_alive()
    (result,) = results
    assert result.error is not None and "cancelled" in result.error
    assert not alive(child) and children(server) == []
    assert shared_server_pid() == server


def test_a_crawl_that_times_out_is_killed_or_crashes_leaves_the_server_usable(
    api_server, tmp_path, monkeypatch
):
    serve_hn(api_server)
    server = shared_server_pid()
    # Timed out: the runner stops the child's group (SIGTERM, then SIGKILL).
    monkeypatch.setattr(runner, "SHUTDOWN_GRACE", 1.0)
    api_server.add(SE, Reply(delay=120))
    slow = job_for(api_server, tmp_path, source={"type": "stackexchange", "name": "slow"})
    hold = {**SLOW, "CLOSESPIDER_TIMEOUT": 600}  # only the runner's limit ends it
    timed_out = run_crawl(slow, timeout=2, settings=hold)
    assert timed_out.error is not None and "did not end within 3s; stopped" in timed_out.error
    assert children(server) == []
    # Killed from outside mid-crawl.
    results: list[Any] = []
    crawl = threading.Thread(
        target=lambda: results.append(run_crawl(slow, timeout=60, settings=hold))
    )
    crawl.start()
    wait_until(lambda: len(api_server.hits(SE)) >= 2, 60, "the second crawl's request")
    (child,) = children(server)
    os.killpg(child, signal.SIGKILL)
    crawl.join(60)
    assert results[0].error is not None and "exit code -9" in results[0].error
    # Crashed: a component that does not exist.
    broken = run_crawl(
        job_for(api_server, tmp_path), timeout=20,
        settings={**TEST_SETTINGS, "ITEM_PIPELINES": {"crawlers.no_such_module.Pipeline": 100}},
    )  # fmt: skip
    assert broken.error is not None and "exit code 1" in broken.error
    assert "no_such_module" in broken.error
    fine = run_crawl(job_for(api_server, tmp_path), timeout=60, settings=TEST_SETTINGS)
    assert fine.error is None and len(fine.mentions) == 3
    assert shared_server_pid() == server, "the same server served all four"


DAEMON = """
import sys, time
from crawlers.forkserver import ForkServer
server = ForkServer.start()
log = open(sys.argv[1], "wb")
child = server.fork(sys.argv[2], log.fileno())
child.stdin.write(sys.stdin.buffer.read())
child.stdin.close()
print(server.ready.pid, child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("killed", ["daemon", "server"])
def test_the_child_dies_when_the_daemon_or_the_server_is_sigkilled(api_server, tmp_path, killed):
    api_server.add(HN, Reply(delay=120))
    job = job_for(api_server, tmp_path)
    settings = json.dumps({**SLOW, "CLOSESPIDER_TIMEOUT": 600})
    daemon = subprocess.Popen(
        [sys.executable, "-c", DAEMON, str(tmp_path / "crawl.log"), settings],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert daemon.stdin is not None and daemon.stdout is not None
        daemon.stdin.write(job.to_wire())
        daemon.stdin.close()
        server, child = map(int, daemon.stdout.readline().split())
        wait_until(lambda: api_server.hits(HN), 60, "the child's request")
        assert alive(child) and alive(server)
        os.kill(daemon.pid if killed == "daemon" else server, signal.SIGKILL)
        wait_until(lambda: not alive(child), 30, "the crawl child to die with the " + killed)
        wait_until(lambda: not alive(server), 30, "the server to end")
    finally:
        daemon.kill()
        daemon.wait()


CHILDREN = """
import os, random, sys
from crawlers.forkserver import become_crawl_child
random.seed(7)
for n in range(2):
    out_r, out_w = os.pipe()
    job_r, job_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r); os.close(job_w)
        become_crawl_child(os.getppid(), job_r, out_w, {"ONLY": "this"})
        print(random.random(), os.getsid(0) == os.getpid(), ",".join(os.environ), sys.stdin.read())
        sys.stdout.flush()
        os._exit(0)
    os.close(out_w); os.close(job_r)
    os.write(job_w, b"job%d" % n); os.close(job_w)
    with os.fdopen(out_r) as out:
        print(out.read().strip())
    os.waitpid(pid, 0)
print(random.random())
"""


def test_each_child_is_reseeded_in_its_own_session_with_the_callers_environment():
    """The contract, not only our call: CPython re-seeds `random` in a forked child
    by itself (os.register_at_fork), so removing `random.seed()` from
    `become_crawl_child` alone does not make this fail; losing both would."""
    proc = subprocess.run([sys.executable, "-c", CHILDREN], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, second, parent = proc.stdout.split("\n")[:3]
    assert first.split()[1:] == ["True", "ONLY", "job0"] and second.split()[1:] == [
        "True",
        "ONLY",
        "job1",
    ]
    numbers = {first.split()[0], second.split()[0], parent}
    assert len(numbers) == 3, "each child draws its own numbers, not the parent's next one"


def test_a_server_that_cannot_start_means_spawned_crawls_and_one_warning(
    api_server, tmp_path, monkeypatch, caplog
):
    serve_hn(api_server)
    forkserver.stop_shared_server()
    monkeypatch.setattr(forkserver, "START_TIMEOUT", 0.01)  # never ready in time
    try:
        with caplog.at_level(logging.DEBUG):
            for state in ("a", "b"):
                result = run_crawl(job_for(api_server, tmp_path, state=state), timeout=60,
                                   settings=TEST_SETTINGS)  # fmt: skip
                assert result.error is None and len(result.mentions) == 3
        warnings = [r.getMessage() for r in caplog.records
                    if r.levelno >= logging.WARNING and r.name.startswith("crawlers.")]  # fmt: skip
        assert warnings == ["crawl children are spawned, not forked: "
                            "the fork server was not ready within 0s"], warnings  # fmt: skip
        assert "forked by the fork server" not in caplog.text
    finally:
        forkserver.stop_shared_server()
