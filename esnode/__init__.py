"""A real single-node Elasticsearch (or a local cluster of several) started from the
Maven Central jars.

Docker is not available where BrandPulse is developed and tested, and no
registry ships the Elasticsearch distribution, but Maven Central ships the
server and its HTTP layer (``transport-netty4``). This module:

1. resolves those jars with Maven into a cache folder outside git
   (``~/.cache/brandpulse/esnode/<version>`` or ``$BRANDPULSE_ESNODE_HOME``),
2. compiles the small launcher in ``esnode/java`` with a JDK >= 21 into the
   same cache (Elasticsearch 9 needs Java 21+),
3. starts the JVM in the background bound to 127.0.0.1 and waits until the
   official Python client sees ``cluster.health`` yellow (`LocalNode`); or starts
   several such JVMs that form one cluster on loopback (`LocalCluster`), for the
   tests of what happens when a node stops or crashes mid-ingest.

What the node lacks compared with a full distribution (no ``analysis-common``,
painless, reindex, ILM, data streams, security, ``GET /``) is described in
docs/elasticsearch.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from elasticsearch import Elasticsearch

# Pinned exactly: the launcher relies on package-private hooks that change
# between minor versions. 9.4.3 is not on Maven Central; 9.5.3 is the newest
# release for which both the server and transport-netty4 are published.
ES_VERSION = "9.5.3"
MIN_JAVA = 21
DEFAULT_PORT = 9250
DEFAULT_HEAP = "512m"
STATE_FILE = "esnode.json"
LOG_FILE = "node.log"

_PKG_DIR = Path(__file__).resolve().parent
_JAVA_SRC = _PKG_DIR / "java"
_POM = _PKG_DIR / "pom.xml"
_MAIN_CLASS = "org.elasticsearch.node.BrandPulseNode"


class EsNodeError(RuntimeError):
    """The local node could not be installed, started or stopped."""


@dataclass(frozen=True)
class Java:
    home: Path
    major: int

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"

    @property
    def javac(self) -> Path:
        return self.home / "bin" / "javac"


def cache_home() -> Path:
    """Where the jars and compiled launcher live (never inside the repo)."""
    override = os.environ.get("BRANDPULSE_ESNODE_HOME")
    if override:
        return Path(override).expanduser().resolve()
    return Path.home() / ".cache" / "brandpulse" / "esnode" / ES_VERSION


def default_data_dir() -> Path:
    override = os.environ.get("BRANDPULSE_ESNODE_DATA")
    if override:
        return Path(override).expanduser().resolve()
    return Path.home() / ".cache" / "brandpulse" / "esnode-data" / "default"


def default_cluster_dir() -> Path:
    """Where ``python -m esnode start --nodes N`` keeps its nodes by default."""
    return default_data_dir().with_name("cluster")


def _java_major(home: Path) -> int | None:
    """Read the feature version from the JDK's ``release`` file, else ``java -version``."""
    release = home / "release"
    if release.is_file():
        m = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', release.read_text(), re.M)
        if m:
            major = int(m.group(1))
            # Java 8 and older report "1.8"
            return int(m.group(2) or 0) if major == 1 else major
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)', out)
    return int(m.group(1)) if m else None


def find_java(jvm_dirs: tuple[Path, ...] = (Path("/usr/lib/jvm"),)) -> Java:
    """Find a JDK (java + javac) >= 21: ``$JAVA_HOME`` if suitable, else the newest
    under ``jvm_dirs``."""
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    for jvm_dir in jvm_dirs:
        if jvm_dir.is_dir():
            candidates.extend(sorted(p for p in jvm_dir.iterdir() if p.is_dir()))
    seen: list[str] = []
    best: Java | None = None
    for home in candidates:
        home = home.resolve()
        major = _java_major(home)
        seen.append(f"{home} (java {major if major is not None else '?'})")
        if major is None or major < MIN_JAVA:
            continue
        if not (home / "bin" / "javac").is_file():
            seen[-1] += " [no javac: a JRE, need a JDK]"
            continue
        if os.environ.get("JAVA_HOME") and home == Path(os.environ["JAVA_HOME"]).resolve():
            # an explicit, suitable JAVA_HOME wins over anything newer on disk
            best = Java(home, major)
            break
        if best is None or major > best.major:
            best = Java(home, major)
    if best is None:
        looked = "\n  ".join(seen) or "(nothing: JAVA_HOME unset and no JVM folder found)"
        raise EsNodeError(
            f"Elasticsearch {ES_VERSION} needs a JDK >= {MIN_JAVA} (java and javac), "
            f"none found. Looked at:\n  {looked}\n"
            f"Install one (e.g. apt-get install temurin-21-jdk or openjdk-21-jdk) "
            f"or point JAVA_HOME at it."
        )
    return best


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two pytest sessions may install at once; the second waits for the first.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sources_digest(java: Java) -> str:
    h = hashlib.sha256(f"{ES_VERSION}|{java.major}".encode())
    for src in sorted(_JAVA_SRC.rglob("*.java")):
        h.update(src.relative_to(_JAVA_SRC).as_posix().encode())
        h.update(src.read_bytes())
    return h.hexdigest()


def ensure_installed(java: Java | None = None, log: bool = True) -> Path:
    """Download jars (first time) and compile the launcher (when sources change).

    Returns the cache folder holding ``lib/`` and ``classes/``.
    """
    java = java or find_java()
    home = cache_home()
    lib = home / "lib"
    classes = home / "classes"
    with _locked(home / ".install.lock"):
        if not (lib / ".complete").is_file():
            mvn = shutil.which("mvn")
            if mvn is None:
                raise EsNodeError(
                    "Maven (mvn) is needed once to download the Elasticsearch jars "
                    f"into {lib}; it is not on PATH. Install it (apt-get install maven)."
                )
            if log:
                print(
                    f"esnode: downloading Elasticsearch {ES_VERSION} jars into {lib}",
                    file=sys.stderr,
                )
            tmp = home / "lib.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            cmd = [
                mvn,
                "-B",
                "-q",
                "-f",
                str(_POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={tmp}",
                f"-Des.version={ES_VERSION}",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise EsNodeError(
                    f"mvn failed to resolve Elasticsearch {ES_VERSION} from Maven Central "
                    f"(exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}"
                )
            if not (tmp / f"elasticsearch-{ES_VERSION}.jar").is_file():
                raise EsNodeError(f"mvn succeeded but {tmp} has no elasticsearch-{ES_VERSION}.jar")
            (tmp / ".complete").write_text(ES_VERSION + "\n")
            shutil.rmtree(lib, ignore_errors=True)
            tmp.rename(lib)

        digest = _sources_digest(java)
        stamp = classes / ".digest"
        launcher_ok = (home / "esnode-launcher.jar").is_file()
        if not (launcher_ok and stamp.is_file() and stamp.read_text().strip() == digest):
            if log:
                print(f"esnode: compiling launcher with {java.javac}", file=sys.stderr)
            shutil.rmtree(classes, ignore_errors=True)
            classes.mkdir(parents=True)
            sources = [str(p) for p in sorted(_JAVA_SRC.rglob("*.java"))]
            proc = subprocess.run(
                [str(java.javac), "-nowarn", "-d", str(classes), "-cp", _classpath(lib), *sources],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise EsNodeError(
                    f"javac failed compiling the esnode launcher against Elasticsearch "
                    f"{ES_VERSION} (hooks changed?):\n{proc.stdout}{proc.stderr}"
                )
            # a jar, not a class folder: the JVM's class-data-sharing archive
            # only accepts jars on the classpath
            launcher = home / "esnode-launcher.jar"
            proc = subprocess.run(
                [str(java.home / "bin" / "jar"), "cf", str(launcher), "-C", str(classes), "."],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise EsNodeError(f"jar failed packaging the launcher:\n{proc.stderr}")
            # a stale archive references the old launcher jar and would be rejected
            for jsa in home.glob("*.jsa"):
                jsa.unlink()
            stamp.write_text(digest + "\n")
    return home


def _classpath(lib: Path, launcher: Path | None = None) -> str:
    jars = sorted(str(p) for p in lib.glob("*.jar"))
    return os.pathsep.join(([str(launcher)] if launcher else []) + jars)


def free_port() -> int:
    """A port free on 127.0.0.1 now. Racy: it may be taken before it is bound again
    (another test session, a client's outgoing connection); `LocalNode(port=0)`
    retries on another when that happens, and local servers should bind 0 themselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortTaken(EsNodeError):
    """The node's HTTP port was (or became) someone else's before the node bound it."""


# A JVM that lost the race for its port says so in its log (Netty's BindException
# wrapped by Elasticsearch's BindHttpException / BindTransportException).
_BIND_FAILED = re.compile(r"Bind(?:Http|Transport)Exception|Address already in use")
PORT_ATTEMPTS = 5  # fresh ports tried by LocalNode(port=0) before giving up


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process, from /proc (None if unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the node's process group: the JVM runs in a session of its own
    (`LocalNode._spawn`), so its group is its pid and holds nothing of ours. A
    process that is not a group leader (started some other way) gets it alone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def process_stopped(pid: int) -> bool:
    """Whether a process is stopped by a signal (SIGSTOP: state ``T`` in /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def freeze_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGSTOP the node's process group: the JVM stays alive and its sockets open (the
    kernel still accepts connections into the listen backlog) but nothing answers, as
    in a long GC pause or a frozen VM. Returns once the process shows as stopped;
    freezing a frozen node does nothing more."""
    if not _pid_alive(pid):
        raise EsNodeError(f"no node process {pid} to freeze")
    _signal_group(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while not process_stopped(pid):
        if time.monotonic() > deadline or not _pid_alive(pid):
            raise EsNodeError(f"node process {pid} did not stop on SIGSTOP within {timeout:.0f}s")
        time.sleep(0.02)


def thaw_pid(pid: int) -> None:
    """SIGCONT the node's process group (a frozen node resumes where it stopped; its
    clients' timed-out requests are answered into closed sockets). Thawing a node that
    is not frozen, or gone, does nothing."""
    if _pid_alive(pid):
        _signal_group(pid, signal.SIGCONT)


def log_tail(data_dir: Path, lines: int = 40) -> str:
    path = Path(data_dir) / LOG_FILE
    if not path.is_file():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def read_state(data_dir: Path) -> dict[str, object] | None:
    path = Path(data_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


class LocalNode:
    """One local Elasticsearch JVM bound to 127.0.0.1.

    ``with LocalNode(port=..., data_dir=...) as node: node.client()...``

    ``data_dir`` holds the index data (``data/``), the log (``node.log``) and the
    state file; starting again on the same folder recovers the indices.
    ``watch_parent`` makes the JVM exit when this Python process dies, so a
    killed test run does not leave a node behind; the CLI turns it off.
    ``settings`` are extra Elasticsearch node settings; they override the defaults.

    ``port=0`` means any free port, as for a socket: the node takes a free port
    and, if that port is taken before the JVM binds it (several test sessions
    at once), starts again on a fresh one, up to `PORT_ATTEMPTS` times; ``port``
    and ``url`` say which one it got once started (a restart picks anew). A port given explicitly is
    used or refused (`PortTaken`), never changed. ``port=None`` is `DEFAULT_PORT`.
    """

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | str | None = None,
        heap: str = DEFAULT_HEAP,
        watch_parent: bool = True,
        boot_timeout: float = 180.0,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        if not re.fullmatch(r"\d+[mMgG]", heap):
            raise ValueError(f"heap must look like 512m or 1g, got {heap!r}")
        self.port = port if port is not None else DEFAULT_PORT
        self._any_port = self.port == 0  # pick a free one at each start
        self.data_dir = Path(data_dir).resolve() if data_dir else default_data_dir()
        self.heap = heap
        self.watch_parent = watch_parent
        self.boot_timeout = boot_timeout
        # extra node settings (`-E key=value`), e.g. a tiny write queue for tests
        self.settings = dict(settings or {})
        self.pid: int | None = None
        self._log_from = 0  # offset in node.log where the current start's output begins
        self.boot_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: object) -> Elasticsearch:
        opts: dict[str, object] = {"request_timeout": 60}
        opts.update(kwargs)
        return Elasticsearch(self.url, **opts)  # type: ignore[arg-type]

    def java_command(self, java: Java, home: Path) -> list[str]:
        cmd = [
            str(java.java),
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            # Modest footprint: this runs next to the model and the crawlers.
            "-XX:+UseG1GC",
            "-XX:ReservedCodeCacheSize=96m",
            "-XX:MaxDirectMemorySize=256m",
            "-Xss1m",
            # Class-data sharing archive, written on the first clean exit and
            # mapped on later starts: loading ~20k classes dominates boot time.
            "-XX:+AutoCreateSharedArchive",
            f"-XX:SharedArchiveFile={home / f'esnode-jdk{java.major}.jsa'}",
            "-Xlog:cds=off",
            "-Xlog:cds+dynamic=off",
            # What the distribution's jvm.options set and the server expects.
            "-Dfile.encoding=UTF-8",
            "-Djava.awt.headless=true",
            "-Djava.locale.providers=CLDR",
            "-Dlog4j2.formatMsgNoLookups=true",
            "-Dlog4j2.disable.jmx=true",
            "-Dlog4j.shutdownHookEnabled=false",
            "-Dio.netty.noUnsafe=true",
            "-Dio.netty.noKeySetOptimization=true",
            "-Dio.netty.recycler.maxCapacityPerThread=0",
            "--enable-native-access=ALL-UNNAMED",
            "-cp",
            _classpath(home / "lib", home / "esnode-launcher.jar"),
            _MAIN_CLASS,
            "--home",
            str(self.data_dir),
            "--http-port",
            str(self.port),
        ]
        if self.watch_parent:
            cmd += ["--parent-pid", str(os.getpid())]
        for key, value in self.settings.items():
            cmd += ["-E", f"{key}={value}"]
        return cmd

    def start(self) -> LocalNode:
        if not self._any_port:
            return self._start_on_port()
        taken: list[str] = []
        for _ in range(PORT_ATTEMPTS):
            self.port = self._pick_port()
            try:
                return self._start_on_port()
            except PortTaken as exc:
                taken.append(str(exc).splitlines()[0])
        self.port = 0
        raise EsNodeError(
            f"no free port for Elasticsearch after {PORT_ATTEMPTS} attempts: " + "; ".join(taken)
        )

    def _pick_port(self) -> int:
        """The next port `port=0` tries (a seam for tests that need a taken one)."""
        return free_port()

    def _start_on_port(self) -> LocalNode:
        java, t0 = self._spawn()
        try:
            self._wait_ready(t0)
        except BaseException:
            self._kill()
            raise
        self._started(java, t0)
        return self

    def _spawn(self) -> tuple[Java, float]:
        """Start the JVM without waiting for it (`LocalCluster` starts all its nodes
        first: none of them is ready before a majority of them runs)."""
        state = read_state(self.data_dir)
        if state and _pid_alive(int(str(state["pid"]))):
            raise EsNodeError(
                f"a node (pid {state['pid']}, {state['url']}) already runs on {self.data_dir}; "
                f"stop it first: python -m esnode stop --data {self.data_dir}"
            )
        if _port_open(self.port):
            raise PortTaken(f"port {self.port} on 127.0.0.1 is already in use")
        java = find_java()
        home = ensure_installed(java)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / LOG_FILE
        t0 = time.monotonic()
        with log_path.open("ab") as log:
            self._log_from = log.tell()
            log.write(f"\n=== esnode start {time.strftime('%Y-%m-%dT%H:%M:%S')} ===\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.java_command(java, home),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # own session: Ctrl-C in the terminal that ran `esnode start`
                # must not kill the background node
                start_new_session=True,
            )
        self.pid = self._proc.pid
        return java, t0

    def _started(self, java: Java, t0: float) -> None:
        """Record a node that answered: boot time and the state file."""
        self.boot_seconds = time.monotonic() - t0
        (self.data_dir / STATE_FILE).write_text(
            json.dumps(
                {
                    "pid": self.pid,
                    "port": self.port,
                    "url": self.url,
                    "version": ES_VERSION,
                    "heap": self.heap,
                    "java": str(java.home),
                    "boot_seconds": round(self.boot_seconds, 2),
                    "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
                indent=2,
            )
            + "\n"
        )

    def _wait_ready(self, t0: float) -> None:
        deadline = t0 + self.boot_timeout
        # A plain TCP poll until HTTP binds: the client would log a warning for
        # every refused connection while the JVM boots.
        while not _port_open(self.port):
            self._check_alive()
            if time.monotonic() > deadline:
                raise EsNodeError(
                    f"Elasticsearch did not open {self.url} within {self.boot_timeout:.0f}s. "
                    f"Log tail:\n{log_tail(self.data_dir)}"
                )
            time.sleep(0.2)
        es = self.client(request_timeout=10, max_retries=0)
        last_error: Exception | None = None
        try:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    es.cluster.health(wait_for_status="yellow", timeout="5s")
                    info = es.nodes.info(node_id="_local", metric="process")
                except Exception as exc:  # 503/408 until the node elected itself
                    last_error = exc
                    time.sleep(0.3)
                    continue
                pids = [n.get("process", {}).get("id") for n in info["nodes"].values()]
                if pids != [self.pid]:
                    # Another process's node took the port between the check and our bind.
                    raise PortTaken(
                        f"port {self.port} on 127.0.0.1 is answered by another node (pid {pids})"
                    )
                return
        finally:
            es.close()
        raise EsNodeError(
            f"Elasticsearch did not become yellow on {self.url} within "
            f"{self.boot_timeout:.0f}s (last error: {last_error!r}). "
            f"Log tail:\n{log_tail(self.data_dir)}"
        )

    def _check_alive(self) -> None:
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            if _BIND_FAILED.search(self._log_since_start()):
                raise PortTaken(
                    f"port {self.port} on 127.0.0.1 was taken before Elasticsearch bound it "
                    f"(log {self.data_dir / LOG_FILE}):\n{log_tail(self.data_dir)}"
                )
            raise EsNodeError(
                f"Elasticsearch JVM exited with code {code} while booting "
                f"(log {self.data_dir / LOG_FILE}):\n{log_tail(self.data_dir)}"
            )

    def _log_since_start(self) -> str:
        try:
            with (self.data_dir / LOG_FILE).open("rb") as log:
                log.seek(self._log_from)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=30)

    def _running_pid(self, what: str) -> int:
        if self.pid is None or not _pid_alive(self.pid):
            raise EsNodeError(f"cannot {what} the node on {self.data_dir}: it does not run")
        return self.pid

    def freeze(self) -> None:
        """Make the running node hang: SIGSTOP to its JVM's process group (`freeze_pid`).
        Its port stays open and connections are accepted, but no request is answered
        until `thaw`; a client sees timeouts, not refusals. Idempotent. `stop` and
        `kill` work on a frozen node (`stop` thaws it first)."""
        freeze_pid(self._running_pid("freeze"))

    def thaw(self) -> None:
        """Let a frozen node run on (SIGCONT); nothing happens if it is not frozen."""
        thaw_pid(self._running_pid("thaw"))

    @property
    def frozen(self) -> bool:
        """Whether the node's JVM is stopped by `freeze`."""
        return self.pid is not None and process_stopped(self.pid)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (the JVM closes the node cleanly), SIGKILL if it hangs. A frozen node
        is thawed first (`stop_pid`), so it can shut down instead of waiting out the
        timeout."""
        pid = self.pid
        if pid is None:
            state = read_state(self.data_dir)
            pid = int(str(state["pid"])) if state else None
        if pid is not None:
            stop_pid(pid, timeout)
            if self._proc is not None:
                self._proc.wait(timeout=5)
        (self.data_dir / STATE_FILE).unlink(missing_ok=True)
        self.pid = None
        self._proc = None

    def kill(self, timeout: float = 30.0) -> None:
        """SIGKILL the JVM, as a crash or the kernel's OOM killer would: no flush, no
        leaving the cluster; what Elasticsearch had fsynced (its translog, before it
        acknowledged a write) stays in the data folder. Returns once the process is gone."""
        pid = self.pid
        if pid is None:
            state = read_state(self.data_dir)
            pid = int(str(state["pid"])) if state else None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(timeout=timeout)
        elif pid is not None and _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        (self.data_dir / STATE_FILE).unlink(missing_ok=True)
        self.pid = None
        self._proc = None

    def rss_bytes(self) -> int | None:
        return rss_bytes(self.pid) if self.pid else None

    def __enter__(self) -> LocalNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_pid(pid: int, timeout: float = 60.0) -> bool:
    """Stop a node JVM; returns False if it had to be killed. A frozen node (`freeze_pid`)
    gets SIGCONT after the SIGTERM: a stopped process only acts on its signals once it
    runs again, and the clean shutdown needs it running."""
    if not _pid_alive(pid):
        return True
    os.kill(pid, signal.SIGTERM)
    thaw_pid(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return False


CLUSTER_FILE = "cluster.json"


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 now (held together while picked, so
    none repeats); as racy as `free_port` afterwards."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            s = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def cluster_name(data_dir: Path) -> str:
    """The cluster's name, derived from its folder: stable across restarts (a node's data
    belongs to one cluster), and distinct between clusters, so nodes of two local
    clusters (two test sessions) can never join each other."""
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:10]
    return f"brandpulse-cluster-{digest}"


class LocalCluster:
    """``nodes`` local Elasticsearch JVMs on 127.0.0.1 forming one cluster.

    ``with LocalCluster(nodes=3, data_dir=...) as cluster: cluster.client()...``

    Every node is a `LocalNode` (``data_dir/node-<i>``, its own log and state file)
    holding all roles (master-eligible and data), named ``node-<i>``; they find each
    other through ``discovery.seed_hosts`` (every node's transport port) and
    bootstrap once with ``cluster.initial_master_nodes`` (every name). Three nodes
    keep a master quorum with one of them down, which is what the tests need: a
    node stopped or killed mid-ingest while the other two carry on.

    ``start`` launches every JVM first and then waits: no node is ready before a
    majority of them runs. It returns once the cluster health reports all ``nodes``
    and at least yellow. ``port=0`` picks free HTTP and transport ports and, if one
    was taken before its JVM bound it, starts the whole cluster again on fresh ones
    (up to `PORT_ATTEMPTS`); a port ``p`` means HTTP ports ``p .. p+nodes-1``. A
    node's ports never change once the cluster started: `start_node` brings a
    stopped or killed node back on them, on its data folder, and it rejoins.
    """

    def __init__(
        self,
        nodes: int = 3,
        port: int | None = 0,
        data_dir: Path | str | None = None,
        heap: str = DEFAULT_HEAP,
        watch_parent: bool = True,
        boot_timeout: float = 300.0,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        if nodes < 2:
            raise ValueError(f"a cluster has 2 nodes or more (one node is LocalNode), got {nodes}")
        if not re.fullmatch(r"\d+[mMgG]", heap):
            raise ValueError(f"heap must look like 512m or 1g, got {heap!r}")
        self.size = nodes
        self.port = port if port is not None else DEFAULT_PORT
        self.data_dir = Path(data_dir).resolve() if data_dir else default_cluster_dir()
        self.heap = heap
        self.watch_parent = watch_parent
        self.boot_timeout = boot_timeout
        self.settings = dict(settings or {})
        self.name = cluster_name(self.data_dir)
        self.names = [f"node-{i}" for i in range(nodes)]
        self.nodes: list[LocalNode] = []
        self.boot_seconds: float | None = None

    @property
    def urls(self) -> list[str]:
        """Every node's HTTP URL: the `elasticsearch.hosts` of a config for this cluster."""
        return [node.url for node in self.nodes]

    def client(self, **kwargs: object) -> Elasticsearch:
        """A client over all nodes: its node pool skips a node that stopped answering."""
        opts: dict[str, object] = {"request_timeout": 60}
        opts.update(kwargs)
        return Elasticsearch(self.urls, **opts)  # type: ignore[arg-type]

    def _make_nodes(self, http: list[int], transport: list[int]) -> list[LocalNode]:
        seeds = ",".join(f"127.0.0.1:{p}" for p in transport)
        nodes = []
        for i, name in enumerate(self.names):
            settings = {
                "node.name": name,
                "cluster.name": self.name,
                "discovery.type": "multi-node",
                "discovery.seed_hosts": seeds,
                "cluster.initial_master_nodes": ",".join(self.names),
                "transport.port": str(transport[i]),
                **self.settings,
            }
            nodes.append(
                LocalNode(
                    port=http[i],
                    data_dir=self.data_dir / name,
                    heap=self.heap,
                    watch_parent=self.watch_parent,
                    boot_timeout=self.boot_timeout,
                    settings=settings,
                )
            )
        return nodes

    def start(self) -> LocalCluster:
        any_port = self.port == 0
        taken: list[str] = []
        t0 = time.monotonic()
        for _ in range(PORT_ATTEMPTS if any_port else 1):
            if any_port:
                ports = _free_ports(2 * self.size)
                http, transport = ports[: self.size], ports[self.size :]
            else:
                http = [self.port + i for i in range(self.size)]
                transport = _free_ports(self.size)
            self.nodes = self._make_nodes(http, transport)
            try:
                self._boot()
            except PortTaken as exc:
                self._kill_all()
                if not any_port:
                    raise
                taken.append(str(exc).splitlines()[0])
                continue
            except BaseException:
                self._kill_all()
                raise
            self.boot_seconds = time.monotonic() - t0
            self._write_state()
            return self
        raise EsNodeError(
            f"no free ports for the cluster after {PORT_ATTEMPTS} attempts: " + "; ".join(taken)
        )

    def _boot(self) -> None:
        spawned = [(node, *node._spawn()) for node in self.nodes]
        for node, java, t0 in spawned:
            node._wait_ready(t0)
            node._started(java, t0)
        self.wait_for_nodes(self.size)

    def wait_for_nodes(
        self, count: int, status: str = "yellow", timeout: float | None = None
    ) -> dict[str, object]:
        """Wait until the cluster health reports exactly ``count`` nodes and at least
        ``status``, asked of the nodes that run; returns the health. ``count`` below
        the size is how a test sees the others noticed a node stopped or killed."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.boot_timeout)
        running = [n for n in self.nodes if n.pid is not None]
        if not running:
            raise EsNodeError("no node of the cluster runs")
        es = Elasticsearch([n.url for n in running], request_timeout=20, max_retries=len(running))
        last: object = None
        try:
            while time.monotonic() < deadline:
                try:
                    health = es.cluster.health(
                        wait_for_nodes=str(count), wait_for_status=status, timeout="10s"
                    )
                except Exception as exc:  # no master yet (503), or a node just went away
                    last = exc
                    time.sleep(0.5)
                    continue
                last = health
                if not health["timed_out"] and health["number_of_nodes"] == count:
                    return dict(health)
                time.sleep(0.5)
        finally:
            es.close()
        raise EsNodeError(
            f"cluster {self.name} did not reach {count} node(s) and {status} within "
            f"the timeout (last answer: {last!r})"
        )

    def stop_node(self, i: int, kill: bool = False) -> None:
        """Stop node ``i``: SIGTERM (a clean shutdown, as `LocalNode.stop`) or, with
        ``kill``, SIGKILL (a crash). Returns once its process is gone; the other
        nodes notice on their own (see `wait_for_nodes`)."""
        node = self.nodes[i]
        if kill:
            node.kill()
        else:
            node.stop()

    def start_node(self, i: int) -> None:
        """Start node ``i`` again on its ports and data folder; returns once it answers
        and the cluster reports every node again."""
        self.nodes[i].start()
        self.wait_for_nodes(self.size)

    def freeze_node(self, i: int) -> None:
        """Make node ``i`` hang (`LocalNode.freeze`): alive, its ports open, silent. The
        others notice only through their own timeouts (fault detection: a few
        seconds to a minute and more), not at once as for a stopped node."""
        self.nodes[i].freeze()

    def thaw_node(self, i: int) -> None:
        """Let node ``i`` run on after `freeze_node` (it rejoins if it was removed)."""
        self.nodes[i].thaw()

    def pids(self) -> list[int | None]:
        return [node.pid for node in self.nodes]

    def _write_state(self) -> None:
        (self.data_dir / CLUSTER_FILE).write_text(
            json.dumps(
                {
                    "cluster_name": self.name,
                    "nodes": [
                        {"name": name, "url": node.url, "data": str(node.data_dir)}
                        for name, node in zip(self.names, self.nodes, strict=True)
                    ],
                    "boot_seconds": round(self.boot_seconds or 0.0, 2),
                },
                indent=2,
            )
            + "\n"
        )

    def _kill_all(self) -> None:
        for node in self.nodes:
            node._kill()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every node: SIGTERM to all at once, then wait (SIGKILL after ``timeout``)."""
        stop_data_dirs([node.data_dir for node in self.nodes], timeout)
        for node in self.nodes:
            if node._proc is not None:
                node._proc.wait(timeout=5)
            node.pid = None
            node._proc = None
        (self.data_dir / CLUSTER_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def read_cluster(data_dir: Path) -> dict[str, object] | None:
    """The ``cluster.json`` of a cluster started in ``data_dir`` (None if there is none)."""
    path = Path(data_dir) / CLUSTER_FILE
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def stop_data_dirs(data_dirs: list[Path], timeout: float = 60.0) -> list[tuple[int, bool]]:
    """Stop the nodes whose state files are in ``data_dirs``: SIGTERM to all first (a
    cluster's nodes shut down together, not one after another), then wait for each,
    SIGKILL after ``timeout``. Returns (pid, stopped cleanly) per node that ran."""
    pids: list[tuple[Path, int]] = []
    for data in data_dirs:
        state = read_state(data)
        if state is not None:
            pids.append((data, int(str(state["pid"]))))
    for _, pid in pids:
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            thaw_pid(pid)  # a frozen node acts on the SIGTERM once it runs again
    results = []
    for data, pid in pids:
        results.append((pid, stop_pid(pid, timeout)))
        (data / STATE_FILE).unlink(missing_ok=True)
    return results


__all__ = [
    "CLUSTER_FILE",
    "DEFAULT_HEAP",
    "DEFAULT_PORT",
    "ES_VERSION",
    "PORT_ATTEMPTS",
    "EsNodeError",
    "Java",
    "LocalCluster",
    "LocalNode",
    "PortTaken",
    "cache_home",
    "cluster_name",
    "default_cluster_dir",
    "default_data_dir",
    "ensure_installed",
    "find_java",
    "free_port",
    "freeze_pid",
    "log_tail",
    "process_stopped",
    "read_cluster",
    "read_state",
    "rss_bytes",
    "stop_data_dirs",
    "stop_pid",
    "thaw_pid",
]
