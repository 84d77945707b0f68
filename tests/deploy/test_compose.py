"""Static checks of compose.yaml (Docker does not run here; `docker compose config` neither).

Checked: the four services, their health checks, the dependency order
elasticsearch -> kibana -> setup -> brandpulse, and that the paths and variables it
wires up agree with the Dockerfile and with the example config.yaml.
"""

from __future__ import annotations

import re
from graphlib import TopologicalSorter
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from brandpulse.config import load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
CONFIG_IN_CONTAINER = "/etc/brandpulse/config.yaml"
APP_DIR = PurePosixPath("/app")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    return compose["services"]


def _depends(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short syntax means service_started
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _stack_version(image: str) -> str:
    match = re.fullmatch(r"[^:]+:(?:\$\{STACK_VERSION:-([0-9.]+)\}|([0-9.]+))", image)
    assert match, f"image {image} has no pinned version"
    return match.group(1) or match.group(2)


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_services(services):
    assert set(services) == {"elasticsearch", "kibana", "setup", "brandpulse"}


def test_elasticsearch_single_node_9x_without_security_with_volume(compose, services):
    es = services["elasticsearch"]
    assert es["image"].startswith("docker.elastic.co/elasticsearch/elasticsearch:")
    assert _stack_version(es["image"]).startswith("9.")
    env = _env(es)
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == "false"
    (volume,) = es["volumes"]
    name, target = volume.split(":")[:2]
    assert target == "/usr/share/elasticsearch/data" and name in compose["volumes"]
    # With security off, nothing but this host may reach the port.
    assert all(str(p).startswith("127.0.0.1:") for p in es["ports"])
    assert "_cluster/health" in " ".join(es["healthcheck"]["test"])


def test_kibana_matches_elasticsearch_and_checks_api_status(services):
    es, kibana = services["elasticsearch"], services["kibana"]
    assert kibana["image"].startswith("docker.elastic.co/kibana/kibana:")
    # Kibana refuses to start against an Elasticsearch of a different version.
    assert _stack_version(kibana["image"]) == _stack_version(es["image"])
    assert "/api/status" in " ".join(kibana["healthcheck"]["test"])
    assert "http://elasticsearch:9200" in _env(kibana)["ELASTICSEARCH_HOSTS"]
    assert all(str(p).startswith("127.0.0.1:") for p in kibana["ports"])


def test_healthchecks_on_long_running_services_only(services):
    for name in ("elasticsearch", "kibana"):
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD-SHELL" and check.get("retries", 0) >= 10
    # The daemon's health check comes from the image's HEALTHCHECK.
    assert "healthcheck" not in services["brandpulse"]
    assert services["setup"]["healthcheck"] == {"disable": True}


def test_dependency_order(services):
    order = list(
        TopologicalSorter({n: set(_depends(s)) for n, s in services.items()}).static_order()
    )
    assert order == ["elasticsearch", "kibana", "setup", "brandpulse"]
    assert _depends(services["kibana"]) == {"elasticsearch": "service_healthy"}
    assert _depends(services["setup"]) == {
        "elasticsearch": "service_healthy",
        "kibana": "service_healthy",
    }
    assert _depends(services["brandpulse"])["setup"] == "service_completed_successfully"


def test_setup_is_one_shot_and_runs_both_setups(services):
    setup = services["setup"]
    command = setup["command"]
    assert command[0] == "setup"
    assert {"--elasticsearch", "--kibana"} <= set(command)
    assert command[command.index("--config") + 1] == CONFIG_IN_CONTAINER
    assert setup["restart"] == "no"
    env = _env(setup)
    assert env["ES_URL"] == "http://elasticsearch:9200"
    assert env["KIBANA_URL"] == "http://kibana:5601"


def test_app_services_use_the_same_image_and_mount_the_config(services):
    setup, daemon = services["setup"], services["brandpulse"]
    assert setup["image"] == daemon["image"] and setup["build"]["context"] == "."
    assert "TORCH_INDEX_URL" in setup["build"]["args"]
    for service in (setup, daemon):
        mounts = [v.rsplit(":", 2) for v in service["volumes"]]
        assert any(target == CONFIG_IN_CONTAINER and mode == "ro" for _, target, mode in mounts)
    assert daemon["command"] == ["run", "--config", CONFIG_IN_CONTAINER]


def test_state_and_spool_volumes_match_the_config_paths(compose, services):
    # The daemon resolves var/state and var/spool against its working directory /app
    # (load_config makes them absolute against the current directory).
    config = load_config(ROOT / "config.yaml", env={})
    targets = {v.split(":")[1]: v.split(":")[0] for v in services["brandpulse"]["volumes"]}
    for path in (config.daemon.state_dir, config.elasticsearch.spool_dir):
        relative = path.relative_to(Path.cwd())
        container_path = str(APP_DIR / PurePosixPath(relative.as_posix()))
        assert container_path in targets, f"{container_path} is not on a volume"
        assert targets[container_path] in compose["volumes"]


def test_every_secret_the_config_reads_is_passed_to_the_daemon(services):
    # Values only: the example's comments mention variables that are not in use.
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    referenced = {m for s in _strings(config) for m in re.findall(r"\$\{([A-Za-z0-9_]+)", s)}
    assert referenced, "config.yaml reads no environment variables: this check checks nothing"
    env = _env(services["brandpulse"])
    assert "SLACK_BOT_TOKEN" in env
    missing = referenced - set(env)
    assert not missing, f"config.yaml reads {sorted(missing)}, compose does not pass them"
    assert env["ES_URL"] == "http://elasticsearch:9200"
