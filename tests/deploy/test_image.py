"""The image really runs: built with podman, run against the local Elasticsearch node.

Marked `image` (CI runs it with the suite; `-m 'not image'` skips it while iterating).
Steps, each with the reason it is done this way (docs/deployment.md):

* No image registry is reachable here, so the base is built from Debian packages with
  debootstrap (bookworm: Python 3.11 and its venv module) and imported as
  `localhost/bookworm-python:3.11`, once: podman keeps it, later runs reuse it. The
  Dockerfile's default base stays the public `python:3.11-slim`.
* The build context is staged in a temporary directory: the repository's files (those
  git tracks or would track) plus the default model already built on the host as
  `model/` (`MODEL_SOURCE=context`), because `.cache` is a symlink out of the worktree
  and building the model in the image would download torch. The host's pip cache is
  mounted on the build's, so a cold build on a machine that ran `make install` fetches
  little; podman's layer cache makes a second build a matter of seconds.
* The container runs with `--network host`, so it reaches the Elasticsearch node of the
  test session and a local source server on 127.0.0.1. Its HEALTHCHECK is run with
  `podman healthcheck run` until it passes (podman schedules health checks through
  systemd, which these machines do not run), then the crawl's mentions are awaited in
  Elasticsearch, scored by the ONNX model.
* runc and cgroupfs instead of podman's defaults (crun refuses the machines' hybrid
  cgroup layout) and no default ulimits (the sandbox refuses to raise RLIMIT_NOFILE):
  /work/shared/notes/containers-local.md.

Skipped only when podman cannot be used at all (not installed and not root to install
it: `.ci/run` installs podman, runc and debootstrap when it runs as root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from daemon.demo import demo_config
from nlp.scorer import DEFAULT_MODEL_DIR
from sandbox.corpus import build_corpus
from sandbox.slack import SlackSandbox
from sandbox.sources import SourcesServer
from tests.deploy.test_dockerfile import HEALTH_URL

# A cold build (base image, every wheel) takes far longer than the suite's 600 s default.
pytestmark = [pytest.mark.image, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/bookworm-python:3.11"
HEALTH_PORT = int(HEALTH_URL.rsplit(":", 1)[1].split("/")[0])
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PIP_CACHE = Path.home() / ".cache" / "pip"


def _say(text: str) -> None:
    print(f"[image] {text}", file=sys.stderr, flush=True)


class Podman:
    """The podman command line with the flags these machines need."""

    def __init__(self, conf: Path) -> None:
        conf.write_text("[containers]\ndefault_ulimits = []\n", encoding="utf-8")
        self.env = dict(os.environ, CONTAINERS_CONF=str(conf))
        self.base = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]

    def __call__(self, *args: str, check: bool = True, timeout: float = 1800,
                 stdin: object = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.base, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=stdin)  # type: ignore[arg-type]
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args[:2])} failed ({done.returncode}):\n"
                                 f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        return done


def _debian_mirror() -> str:
    """The mirror apt already uses on the host (deb822 or one-line sources)."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2:
                return words[2] if not words[1].startswith("[") else words[3]
    return DEFAULT_MIRROR


def _ensure_base(podman: Podman, workdir: Path) -> None:
    """`localhost/bookworm-python:3.11`, built with debootstrap unless podman has it."""
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return
    rootfs = workdir / "rootfs"
    started = time.monotonic()
    subprocess.run(["debootstrap", "--variant=minbase",
                    "--include=python3,python3-venv,ca-certificates", "bookworm", str(rootfs),
                    _debian_mirror()], check=True, capture_output=True, timeout=1800)
    with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
        podman("import", "-", BASE_IMAGE, stdin=tar.stdout)
    shutil.rmtree(rootfs, ignore_errors=True)
    _say(f"base image {BASE_IMAGE} built with debootstrap in {time.monotonic() - started:.0f} s")


def _stage_context(target: Path) -> None:
    """The repository as git sees it (tracked and untracked, not ignored) + model/."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / os.fsdecode(name)
        if source.is_file():  # deleted but still tracked files are skipped
            (target / source.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / source.relative_to(ROOT))
    # As the model's build stage leaves it: the int8 graph only (nlp.quantize's default).
    shutil.copytree(DEFAULT_MODEL_DIR.resolve(), target / "model",
                    ignore=lambda _dir, names: [n for n in names if n == "model.onnx"])


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    missing = [c for c in ("podman", "runc", "debootstrap") if shutil.which(c) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (.ci/run installs them when it runs "
                    "as root: apt-get install podman runc debootstrap)")
    tool = Podman(tmp_path_factory.mktemp("podman") / "containers.conf")
    if tool("info", check=False).returncode != 0:
        pytest.skip("podman is installed but cannot run here (rootful podman needs root)")
    return tool


@pytest.fixture(scope="module")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app image, built from the staged context; removed after the module."""
    assert (DEFAULT_MODEL_DIR / "build_info.json").is_file(), "run `make model` first"
    work = tmp_path_factory.mktemp("image")
    _ensure_base(podman, work)
    context = work / "context"
    context.mkdir()
    _stage_context(context)
    tag = f"localhost/brandpulse-test:{uuid.uuid4().hex[:8]}"
    volumes = []
    if CA_BUNDLE.is_file():  # pip inside verifies TLS with the host's bundle
        volumes += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    if PIP_CACHE.is_dir():
        volumes += ["-v", f"{PIP_CACHE}:/root/.cache/pip"]
    started = time.monotonic()
    # docker format: the OCI format has no HEALTHCHECK.
    podman("build", "--format", "docker", "--network", "host", *volumes,
           "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", "MODEL_SOURCE=context",
           "-t", tag, str(context))
    size = int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())
    _say(f"app image built in {time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB")
    shutil.rmtree(context, ignore_errors=True)
    try:
        yield tag
    finally:
        # The tag only: the layers stay cached for the next build.
        podman("rmi", tag, check=False)


def _run_in(podman: Podman, image: str, *command: str) -> str:
    return podman("run", "--rm", "--network", "none", "--entrypoint", command[0], image,
                  *command[1:]).stdout


def test_image_carries_no_torch_tests_or_stand_ins(podman, image):
    listing = set(_run_in(podman, image, "ls", "-A", "/app").split())
    assert {"scheduler.py", "brandpulse", "nlp", "daemon", ".cache"} <= listing
    assert not listing & {"tests", "bench", "sandbox", "esnode", "docs", ".git", "model"}
    probe = ("import importlib.util as u; "
             "print(*[m for m in ('torch', 'transformers', 'pytest') if u.find_spec(m)])")
    assert _run_in(podman, image, "python", "-c", probe).strip() == ""
    model = _run_in(podman, image, "ls", "/app/.cache/models/default/onnx").split()
    assert "model.int8.onnx" in model and "export_info.json" in model
    # The daemon's user reads every file of the model (the weights are hashed at load).
    unreadable = _run_in(podman, image, "find", "/app/.cache/models/default", "!", "-readable")
    assert unreadable.strip() == ""


def _wait(condition: Callable[[], bool], timeout: float, what: str,
          diagnose: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnose()}")


def _indexed(es, prefix: str) -> list[dict]:
    alias = f"{prefix}-mentions"
    if not es.indices.exists_alias(name=alias):
        return []
    es.indices.refresh(index=alias)
    return [h["_source"] for h in es.search(index=alias, size=1000)["hits"]["hits"]]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_container_turns_healthy_and_indexes_a_local_crawl(podman, image, es_node, es_client,
                                                           tmp_path):
    assert _port_free(HEALTH_PORT), (
        f"127.0.0.1:{HEALTH_PORT} is taken: the container shares the host's network and "
        "its health check asks that port")
    prefix = f"img{uuid.uuid4().hex[:8]}"
    corpus = build_corpus(datetime.now(UTC))
    expected = {p.id for p in corpus.history if p.tone != "noise"}
    name = f"brandpulse-test-{uuid.uuid4().hex[:8]}"
    with SlackSandbox() as slack, SourcesServer() as sources:
        sources.publish(corpus.history)
        data = demo_config(es_node.url, sources.base_urls(), slack.base_url, tmp_path,
                           index_prefix=prefix)
        # The image's own writable places and its health port.
        data["daemon"].update(state_dir="/app/var/state", http_port=HEALTH_PORT,
                              log_format="json")
        data["elasticsearch"]["spool_dir"] = "/app/var/spool"
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        config.chmod(0o644)
        started = time.monotonic()
        podman("run", "-d", "--name", name, "--network", "host",
               "-v", f"{config}:/etc/brandpulse/config.yaml:ro", image)

        def logs() -> str:
            done = podman("logs", "--tail", "60", name, check=False)
            return f"container logs:\n{done.stdout[-6000:]}{done.stderr[-6000:]}"

        def healthy() -> bool:
            state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            assert state == "running", f"the container stopped ({state})\n{logs()}"
            return podman("healthcheck", "run", name, check=False).returncode == 0

        try:
            _wait(healthy, 600, "the container's health check", logs)
            _say(f"container healthy {time.monotonic() - started:.0f} s after start")
            _wait(lambda: len(_indexed(es_client, prefix)) >= len(expected), 600,
                  "the crawl's mentions in Elasticsearch", logs)
            _say(f"crawl indexed {time.monotonic() - started:.0f} s after start")
            docs = _indexed(es_client, prefix)
            assert len(docs) == len(expected), "each post indexed exactly once"
            assert len({d["id"] for d in docs}) == len(docs)
            assert {d["source"] for d in docs} == {"reddit", "hackernews", "mastodon"}
            models = {d["sentiment"]["model"] for d in docs}
            assert models and all("onnx" in m for m in models), models
            podman("stop", "--time", "40", name)
            state = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
            assert state == "0", f"the daemon exited with {state} on SIGTERM\n{logs()}"
        finally:
            podman("rm", "-f", name, check=False)
