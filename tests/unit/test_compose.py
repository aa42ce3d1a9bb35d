"""Static checks of the docker-compose deployment and its monitoring config.

Docker is not available where the unit tests run, so these tests read
docker-compose.yml, the Dockerfile and deploy/ as data and check the properties
that would otherwise only show up at `docker compose up` time on a provincial
server: unpinned images, ports open to the LAN, secrets in git, ONESTOP_*
variables that Settings silently ignores (it uses extra="ignore"), Prometheus
scraping a port nobody listens on, mounts of files that do not exist...

Each test checks one property so a failure names the broken rule.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from onestop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER_FILE = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
DATASOURCE_FILE = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "clickhouse.yml"
DASHBOARD_PROVIDER_FILE = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "onestop.yml"

EXPECTED_SERVICES = {
    "kafka",
    "kafka-init",
    "clickhouse",
    "grafana",
    "prometheus",
    "alertmanager",
    "worker",
    "sink",
    "alert-router",
    "simulator",
}
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY", re.IGNORECASE)
# ${VAR} or ${VAR:?message} / ${VAR?message}: required, no default value.
SECRET_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")
SETTINGS_ENV_NAMES = {f"ONESTOP_{name.upper()}" for name in Settings.model_fields}


# ----------------------------------------------------------------- helpers ----


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


COMPOSE: dict[str, Any] = _load_yaml(COMPOSE_FILE)
SERVICES: dict[str, dict[str, Any]] = COMPOSE.get("services") or {}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as str -> str, whichever syntax compose uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short syntax: no condition at all
        return {name: {} for name in deps}
    return {name: (spec or {}) for name, spec in deps.items()}


def _one_shot_services() -> set[str]:
    """Jobs meant to run once and exit (kafka-init, the demo simulator): restart "no"."""
    return {name for name, service in SERVICES.items() if str(service.get("restart", "no")) == "no"}


def _project_services(include_profiled: bool = True) -> list[str]:
    """Services built from this repository's Dockerfile."""
    return sorted(
        name
        for name, service in SERVICES.items()
        if "build" in service and (include_profiled or not service.get("profiles"))
    )


def _strings(node: Any):
    """Every string value (not key) in a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _interpolations(text: str) -> tuple[list[str], list[str]]:
    """Compose interpolation in one string: (braced ${VAR...} names, bare $VAR names).

    ``$$`` is compose's escape for a literal ``$`` and is skipped.
    """
    braced, bare = [], []
    i = 0
    while i < len(text):
        if text[i] != "$":
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            i += 2
        elif nxt == "{":
            match = re.match(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text[i:])
            if match:
                braced.append(match.group(1))
            i += 2
        else:
            match = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", text[i:])
            if match:
                bare.append(match.group(1))
            i += 1
    return braced, bare


def _interpolated_names() -> set[str]:
    return {name for text in _strings(COMPOSE) for name in _interpolations(text)[0]}


def _env_example() -> dict[str, str]:
    entries = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        entries[key.strip()] = value.strip()
    return entries


def _resolve(value: str, variables: dict[str, str]) -> str:
    """Apply compose interpolation with the given variables (defaults honoured)."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        current = variables.get(name, "")
        if operator in (":-", "-"):
            return current or argument
        return current

    resolved = re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?([^}]*)\}", substitute, value)
    return resolved.replace("$$", "$")


def _example_variables() -> dict[str, str]:
    """.env.example values, with a dummy for the secrets it leaves empty."""
    return {key: value or "dummy-secret" for key, value in _env_example().items()}


def _published_ports(service: dict[str, Any]) -> list[Any]:
    return list(service.get("ports") or [])


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every bind mount from the repository."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.split(":", 1)[0]
        else:
            if volume.get("type", "volume") != "bind":
                continue
            source, target = volume.get("source", ""), volume.get("target", "")
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _scrape_targets() -> dict[str, list[str]]:
    config = _load_yaml(PROMETHEUS_FILE)
    return {
        job["job_name"]: [target for static in job.get("static_configs", []) for target in static.get("targets", [])]
        for job in config.get("scrape_configs", [])
    }


def _kafka_init_script() -> str:
    service = SERVICES["kafka-init"]
    parts = list(service.get("entrypoint") or []) + list(service.get("command") or [])
    return "\n".join(str(part) for part in parts)


# ------------------------------------------------------------ compose file ----


def test_compose_parses_and_declares_the_expected_services() -> None:
    assert isinstance(COMPOSE, dict)
    assert EXPECTED_SERVICES <= set(SERVICES), f"missing: {EXPECTED_SERVICES - set(SERVICES)}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_has_image_or_build(name: str) -> None:
    service = SERVICES[name]
    assert "image" in service or "build" in service


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if "image" in s))
def test_image_tag_is_pinned(name: str) -> None:
    image = SERVICES[name]["image"]
    if "@sha256:" in image:
        return  # a digest is the strongest pin there is
    repository, _, tag = image.rpartition(":")
    assert repository and "/" not in tag, f"{name}: {image!r} has no tag"
    assert tag and tag != "latest" and not tag.startswith("latest-"), f"{name}: {image!r} is not pinned"


# One-shot jobs exit by design: the services waiting for them use
# service_completed_successfully instead of a healthcheck. Everything that
# compose restarts must say when it is healthy.
@pytest.mark.parametrize("name", sorted(set(SERVICES) - _one_shot_services()))
def test_long_running_service_has_healthcheck(name: str) -> None:
    healthcheck = SERVICES[name].get("healthcheck") or {}
    assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} has no healthcheck"


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if s.get("depends_on")))
def test_depends_on_waits_for_a_meaningful_condition(name: str) -> None:
    for dependency, spec in _depends_on(SERVICES[name]).items():
        condition = spec.get("condition")
        assert condition in {"service_healthy", "service_completed_successfully"}, (
            f"{name} -> {dependency}: condition {condition!r} only waits for the container to start"
        )
        if condition == "service_healthy":
            assert SERVICES[dependency].get("healthcheck"), f"{name} waits for {dependency}, which has no healthcheck"
        else:
            assert dependency in _one_shot_services(), f"{dependency} restarts, so it never completes"


def test_no_bare_dollar_variables() -> None:
    # `$var` in a shell snippet is interpolated by compose (to "" when unset);
    # the shell needs `$$var`. Compose's own variables are written `${VAR}`.
    bare = sorted({name for text in _strings(COMPOSE) for name in _interpolations(text)[1]})
    assert not bare, f"unescaped $VAR in docker-compose.yml (use $$VAR or ${{VAR}}): {bare}"


# ---------------------------------------------------------------- settings ----


def test_onestop_environment_keys_are_settings_fields() -> None:
    keys = {
        (name, key)
        for name, service in SERVICES.items()
        for key in _environment(service)
        if key.startswith("ONESTOP_")
    }
    assert keys, "no ONESTOP_* variables at all"
    unknown = sorted(f"{name}: {key}" for name, key in keys if key not in SETTINGS_ENV_NAMES)
    assert not unknown, f"not a Settings field (would be silently ignored): {unknown}"


def test_onestop_interpolated_variables_are_settings_fields() -> None:
    names = _interpolated_names()
    unknown = sorted(name for name in names if name.startswith("ONESTOP_") and name not in SETTINGS_ENV_NAMES)
    assert not unknown, f"not a Settings field: {unknown}"


@pytest.mark.parametrize("name", _project_services())
def test_project_environment_validates_against_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Resolve the compose interpolation the way `docker compose` would with the
    # example .env, then let pydantic validate types, patterns and validators.
    for key in list(os.environ):
        if key.startswith("ONESTOP_"):
            monkeypatch.delenv(key)
    variables = _example_variables()
    for key, value in _environment(SERVICES[name]).items():
        if key.startswith("ONESTOP_"):
            monkeypatch.setenv(key, _resolve(value, variables))
    Settings()


def test_project_service_commands() -> None:
    commands = {name: SERVICES[name].get("command") for name in ("worker", "sink", "simulator", "schema")}
    assert commands["schema"][:3] == ["onestop", "db", "migrate"] and "--reader-user" in commands["schema"]
    assert _depends_on(SERVICES["sink"])["schema"]["condition"] == "service_completed_successfully"
    assert _depends_on(SERVICES["grafana"])["schema"]["condition"] == "service_completed_successfully"
    assert commands["worker"] == ["onestop", "worker"]
    assert commands["sink"] == ["onestop", "sink"]
    assert commands["simulator"][:2] == ["onestop", "simulate"]


def test_simulator_runs_only_in_the_demo_profile() -> None:
    assert SERVICES["simulator"].get("profiles") == ["demo"]


def test_production_services_have_no_profile() -> None:
    profiled = sorted(name for name, service in SERVICES.items() if service.get("profiles") and name != "simulator")
    assert not profiled, f"would not start with a plain `docker compose up`: {profiled}"


# ------------------------------------------------------------------- ports ----


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if s.get("ports")))
def test_published_ports_are_bound_to_loopback(name: str) -> None:
    for port in _published_ports(SERVICES[name]):
        if isinstance(port, dict):
            assert port.get("host_ip") == "127.0.0.1", f"{name}: {port!r}"
        else:
            # "HOST_IP:HOST_PORT:CONTAINER_PORT" is the only form with an address.
            parts = str(port).split(":")
            assert len(parts) == 3 and parts[0] == "127.0.0.1", f"{name}: {port!r} is reachable from the network"


def test_project_services_publish_no_ports() -> None:
    # The project services are scraped over the compose network; publishing
    # their ports would be one more thing listening on the host.
    published = sorted(name for name in _project_services() if SERVICES[name].get("ports"))
    assert not published, f"project services should not publish ports: {published}"


# ------------------------------------------------------------ connectivity ----


@pytest.mark.parametrize("name", _project_services())
def test_kafka_bootstrap_points_at_the_kafka_listener(name: str) -> None:
    bootstrap = _environment(SERVICES[name])["ONESTOP_KAFKA_BOOTSTRAP"]
    for server in bootstrap.split(","):
        host, port = _host_port(server.strip())
        assert host in SERVICES, f"{name}: {host!r} is not a compose service"
        kafka_env = _environment(SERVICES[host])
        listeners = kafka_env["KAFKA_LISTENERS"].split(",")
        advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert any(l.endswith(f":{port}") and not l.startswith("CONTROLLER") for l in listeners), (
            f"{host} does not listen on {port}: {listeners}"
        )
        # The broker hands clients its advertised address: it must be the same
        # name/port the container can resolve, not 127.0.0.1 or localhost.
        assert any(a.split("://", 1)[-1] == f"{host}:{port}" for a in advertised), (
            f"{host} does not advertise {host}:{port}: {advertised}"
        )


def test_kafka_image_matches_the_local_broker_version() -> None:
    # `onestop kafka start` (dev) and compose (prod) should run the same broker.
    version = Settings.model_fields["kafka_version"].default
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{version}"


@pytest.mark.parametrize(
    "name", [n for n in _project_services() if "ONESTOP_CLICKHOUSE_DSN" in _environment(SERVICES[n])]
)
def test_clickhouse_dsn_points_at_the_clickhouse_service(name: str) -> None:
    dsn = urlsplit(_resolve(_environment(SERVICES[name])["ONESTOP_CLICKHOUSE_DSN"], _example_variables()))
    assert dsn.scheme in {"http", "https"}
    assert dsn.hostname == "clickhouse" and "clickhouse" in SERVICES
    assert dsn.port == 8123


# --------------------------------------------------------------- secrets ----


def _secret_values() -> list[tuple[str, str, str]]:
    return [
        (name, key, value)
        for name, service in SERVICES.items()
        for key, value in _environment(service).items()
        if SECRET_KEY.search(key)
    ]


@pytest.mark.parametrize(("name", "key", "value"), _secret_values(), ids=lambda v: str(v)[:40])
def test_secrets_are_required_env_references(name: str, key: str, value: str) -> None:
    # No literal value and no ${VAR:-default}: a default would be a committed secret.
    assert SECRET_REFERENCE.match(value), f"{name}.{key} = {value!r} is not a ${{VAR}} / ${{VAR:?msg}} reference"


def test_no_credentials_embedded_in_urls() -> None:
    for text in _strings(COMPOSE):
        # Hide ${...} references first: their ":-"/":?" would look like user:password.
        references: list[str] = []

        def hide(match: re.Match[str]) -> str:
            references.append(match.group(0))
            return f"\0{len(references) - 1}\0"

        masked = re.sub(r"\$\{[^}]*\}", hide, text)
        for match in re.finditer(r"://[^/\s:@]+:([^@\s/]+)@", masked):
            password = re.sub(r"\0(\d+)\0", lambda m: references[int(m.group(1))], match.group(1))
            assert SECRET_REFERENCE.match(password), f"password in URL: {text!r}"


def test_env_example_leaves_secrets_empty() -> None:
    filled = sorted(key for key, value in _env_example().items() if SECRET_KEY.search(key) and value)
    assert not filled, f".env.example must not carry secret values: {filled}"


def test_env_example_documents_every_interpolated_variable() -> None:
    missing = sorted(_interpolated_names() - set(_env_example()))
    assert not missing, f"used in docker-compose.yml but not in .env.example: {missing}"


def test_env_example_onestop_variables_are_settings_fields() -> None:
    unknown = sorted(key for key in _env_example() if key.startswith("ONESTOP_") and key not in SETTINGS_ENV_NAMES)
    assert not unknown, f"not a Settings field: {unknown}"


# ----------------------------------------------------------------- mounts ----


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if _bind_mounts(s)))
def test_bind_mounted_files_exist(name: str) -> None:
    for source, _target in _bind_mounts(SERVICES[name]):
        assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


@pytest.mark.parametrize("name", _project_services())
def test_build_context_and_dockerfile_exist(name: str) -> None:
    build = SERVICES[name]["build"]
    context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (context / dockerfile).is_file()


# ------------------------------------------------------------- dockerfile ----


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_final_stage_runs_as_non_root() -> None:
    users = [rest for keyword, rest in _dockerfile_instructions() if keyword == "USER"]
    assert users, "no USER instruction: the container would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_base_is_python_311_slim() -> None:
    instructions = _dockerfile_instructions()
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest)
    bases = [_resolve(rest.split()[0], args) for keyword, rest in instructions if keyword == "FROM"]
    assert bases and all(base.startswith("python:3.11") and "slim" in base for base in bases), bases


def test_dockerignore_excludes_env_files() -> None:
    patterns = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert ".env" in patterns and ".git" in patterns and ".venv" in patterns


def test_dockerignore_keeps_what_the_build_needs() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    needed = ["pyproject.toml", "uv.lock", "README.md", "onestop/settings.py", "ops/kafka/pom.xml"]
    needed += [f"{package}/__init__.py" for package in ("onestop_cli", "ops", "producers", "streams", "sinks",
                                                        "dashboards")]
    for path in needed:
        assert (ROOT / path).exists(), path
        excluded = [p for p in patterns if not p.startswith("!") and any(
            fnmatch.fnmatch(prefix, p.lstrip("/")) for prefix in _prefixes(path)
        )]
        assert not excluded, f"{path} is excluded from the build context by {excluded}"


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


# --------------------------------------------------------------- grafana ----


def _datasource() -> dict[str, Any]:
    sources = _load_yaml(DATASOURCE_FILE)["datasources"]
    return next(s for s in sources if s["type"] == "grafana-clickhouse-datasource")


def test_grafana_datasource_uid_is_fixed() -> None:
    assert _datasource()["uid"] == "onestop-clickhouse"


def test_grafana_datasource_default_database() -> None:
    assert _datasource()["jsonData"]["defaultDatabase"] == Settings.model_fields["clickhouse_database"].default


def test_grafana_datasource_reaches_the_clickhouse_service() -> None:
    json_data = _datasource()["jsonData"]
    assert json_data["host"] in SERVICES
    # Same endpoint and protocol as the sink's DSN.
    dsn = urlsplit(_resolve(_environment(SERVICES["sink"])["ONESTOP_CLICKHOUSE_DSN"], _example_variables()))
    assert (json_data["protocol"], json_data["host"], int(json_data["port"])) == (dsn.scheme, dsn.hostname, dsn.port)


def test_grafana_datasource_password_comes_from_grafana_environment() -> None:
    password = _datasource()["secureJsonData"]["password"]
    match = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", password)
    assert match, f"literal password in {DATASOURCE_FILE.name}"
    assert match.group(1) in _environment(SERVICES["grafana"]), f"grafana container does not get {match.group(1)}"


def test_grafana_installs_the_clickhouse_plugin() -> None:
    env = _environment(SERVICES["grafana"])
    # GF_INSTALL_PLUGINS is deprecated since Grafana 12 but still honoured.
    keys = ("GF_PLUGINS_PREINSTALL_SYNC", "GF_PLUGINS_PREINSTALL", "GF_INSTALL_PLUGINS")
    plugins = ",".join(env.get(key, "") for key in keys)
    assert "grafana-clickhouse-datasource" in plugins


def test_grafana_dashboard_provider_path_is_mounted() -> None:
    provider_paths = {p["options"]["path"] for p in _load_yaml(DASHBOARD_PROVIDER_FILE)["providers"]}
    targets = {target for _source, target in _bind_mounts(SERVICES["grafana"])}
    assert provider_paths and provider_paths <= targets, (provider_paths, targets)


# ----------------------------------------------------- prometheus/alerting ----


@pytest.mark.parametrize(("service", "config"), [("prometheus", PROMETHEUS_FILE), ("alertmanager", ALERTMANAGER_FILE)])
def test_monitoring_config_is_mounted_where_the_command_reads_it(service: str, config: Path) -> None:
    flags = dict(arg.split("=", 1) for arg in SERVICES[service]["command"] if "=" in arg)
    container_path = Path(flags["--config.file"])
    mounts = {target: source for source, target in _bind_mounts(SERVICES[service])}
    assert str(container_path.parent) in mounts, f"{container_path.parent} is not mounted"
    assert (ROOT / mounts[str(container_path.parent)] / container_path.name).resolve() == config.resolve()


def test_prometheus_rule_files_exist() -> None:
    patterns = _load_yaml(PROMETHEUS_FILE).get("rule_files") or []
    assert patterns, "no rule_files"
    for pattern in patterns:
        # Prometheus resolves relative rule paths against the config file's directory.
        assert not Path(pattern).is_absolute(), f"{pattern}: absolute paths break promtool in the repo"
        assert glob.glob(str(PROMETHEUS_FILE.parent / pattern)), f"{pattern} matches no file"


def test_prometheus_rules_have_severity() -> None:
    rule_files = [
        Path(path)
        for pattern in _load_yaml(PROMETHEUS_FILE)["rule_files"]
        for path in glob.glob(str(PROMETHEUS_FILE.parent / pattern))
    ]
    alerts = [
        rule
        for path in rule_files
        for group in _load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert alerts
    for rule in alerts:
        assert rule["expr"].strip(), rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, rule["alert"]


def test_prometheus_sends_alerts_to_the_alertmanager_service() -> None:
    managers = _load_yaml(PROMETHEUS_FILE)["alerting"]["alertmanagers"]
    targets = [t for manager in managers for static in manager["static_configs"] for t in static["targets"]]
    assert targets
    for target in targets:
        host, port = _host_port(target)
        assert host == "alertmanager" and host in SERVICES
        assert port == 9093


@pytest.mark.parametrize("name", sorted(set(_project_services(include_profiled=False)) - _one_shot_services()))
def test_prometheus_scrapes_the_project_metrics_port(name: str) -> None:
    # A one-shot job (the schema migrations) exits before a scrape could see it.
    port = int(_environment(SERVICES[name]).get("ONESTOP_METRICS_PORT", "0"))
    assert port > 0, f"{name}: ONESTOP_METRICS_PORT=0 disables the metrics endpoint"
    all_targets = {target for targets in _scrape_targets().values() for target in targets}
    assert f"{name}:{port}" in all_targets, f"prometheus does not scrape {name}:{port}"


@pytest.mark.parametrize("name", _project_services(include_profiled=False))
def test_project_endpoints_listen_on_all_container_interfaces(name: str) -> None:
    # prometheus-client and Faust bind to ONESTOP_WEB_HOST; at its default
    # (127.0.0.1) the healthcheck would pass but Prometheus could not scrape.
    assert _environment(SERVICES[name]).get("ONESTOP_WEB_HOST") in {"0.0.0.0", "::"}


def test_prometheus_targets_are_compose_services_on_their_metrics_port() -> None:
    for job, targets in _scrape_targets().items():
        for target in targets:
            host, port = _host_port(target)
            if host == "localhost":
                continue
            assert host in SERVICES, f"job {job}: {host} is not a compose service"
            if "build" in SERVICES[host]:
                expected = int(_environment(SERVICES[host])["ONESTOP_METRICS_PORT"])
                assert port == expected, f"job {job} scrapes {target}, service listens on {expected}"


def test_alert_rules_jobs_exist_in_prometheus() -> None:
    # up{job="..."} on a job that is not scraped never fires.
    jobs = set(_scrape_targets())
    text = "\n".join(
        path.read_text(encoding="utf-8") for path in (PROMETHEUS_FILE.parent / "rules").glob("*.yml")
    )
    referenced = set(re.findall(r'job="([^"]+)"', text))
    assert referenced <= jobs, f"rules reference unscraped jobs: {referenced - jobs}"


def test_alertmanager_routes_to_defined_receivers() -> None:
    config = _load_yaml(ALERTMANAGER_FILE)
    receivers = {receiver["name"] for receiver in config["receivers"]}

    def walk(route: dict[str, Any]):
        yield route
        for child in route.get("routes", []):
            yield from walk(child)

    assert config["route"].get("receiver"), "the root route needs a default receiver"
    for route in walk(config["route"]):
        if "receiver" in route:
            assert route["receiver"] in receivers, route["receiver"]


def test_alertmanager_webhooks_are_urls() -> None:
    config = _load_yaml(ALERTMANAGER_FILE)
    urls = [hook["url"] for r in config["receivers"] for hook in r.get("webhook_configs", [])]
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert parts.scheme in {"http", "https"} and parts.hostname, url


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_check_config() -> None:
    result = subprocess.run(["promtool", "check", "config", str(PROMETHEUS_FILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
def test_amtool_check_config() -> None:
    result = subprocess.run(["amtool", "check-config", str(ALERTMANAGER_FILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------ kafka topics ----


def test_kafka_init_creates_every_settings_topic() -> None:
    created = set(re.findall(r"--topic\s+([\w.]+)", _kafka_init_script()))
    expected = {field.default for name, field in Settings.model_fields.items() if name.startswith("topic_")}
    assert expected <= created, f"not created: {expected - created}"


def test_kafka_init_partitions_match_the_project_services() -> None:
    script = _kafka_init_script()
    partitions = set(re.findall(r"--partitions\s+(\S+)", script))
    assert len(partitions) == 1, partitions
    for name in _project_services():
        assert _environment(SERVICES[name])["ONESTOP_PARTITIONS"] in partitions, name


def test_state_topic_is_compacted() -> None:
    state_topic = Settings.model_fields["topic_state"].default
    lines = [line for line in _kafka_init_script().splitlines() if f"--topic {state_topic}" in line]
    assert lines and all("cleanup.policy=compact" in line for line in lines)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_rule_unit_tests() -> None:
    rules_tests = Path(__file__).resolve().parents[2] / "deploy/prometheus/tests/pipeline.test.yml"
    result = subprocess.run(["promtool", "test", "rules", str(rules_tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
