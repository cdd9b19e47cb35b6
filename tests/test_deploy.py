"""The Kubernetes manifests (deploy/base, deploy/overlays/dev, and dev with the
webmethods-paths component) and the Dockerfile.

Every rendered object is validated against the Kubernetes API's own schemas (bundled in
the kubernetes-validate wheel, so no network), and the parts must fit together: Services,
Ingress and NetworkPolicies select the Deployments' pods on their ports, and the Ingress
routes exactly the public endpoints the service applications serve.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from aiohttp import web

from services.admin.app import create_app as admin_app
from services.authorize.app import create_app as authorize_app
from services.introspect.app import create_app as introspect_app
from services.token.app import create_app as token_app
from shared.admin.apply_documents import load
from shared.config.settings import Settings
from shared.web.webmethods_paths import ALIASES
from tests.manifests import (
    DEPLOY,
    REPO,
    Manifest,
    Peer,
    Stage,
    admitted,
    dockerfile_stages,
    identity,
    named,
    of_kind,
    pod_labels,
    render,
    selects,
)
from tests.stack import CreateApp

BASE = DEPLOY / "base"
DEV = DEPLOY / "overlays" / "dev"
# The dev overlay with deploy/components/webmethods-paths, which is tested through it.
DEV_WEBMETHODS = DEPLOY / "overlays" / "dev-webmethods"
OVERLAYS = {"base": BASE, "dev": DEV, "dev-webmethods": DEV_WEBMETHODS}
# The oldest minor still common in managed clusters, and the newest the wheel knows.
KUBERNETES_VERSIONS = ["1.33", "1.37"]
COMPONENTS = ["authorize", "token", "introspect"]
PORT = 8080
# The admin API's port on the token pods (services/admin, TESSERA_ADMIN_PORT).
ADMIN_PORT = 9443
UID = 10001
KEYS_DIR = "/etc/tessera/keys"

RENDERED = {name: render(path) for name, path in OVERLAYS.items()}
ALL_OBJECTS = [
    pytest.param(overlay, obj, id=f"{overlay}-{obj['kind']}-{obj['metadata']['name']}")
    for overlay, objects in RENDERED.items()
    for obj in objects
]


def deployment(component: str) -> Manifest:
    return named(RENDERED["base"], "Deployment", f"tessera-{component}")


def container(component: str) -> Manifest:
    containers: list[Manifest] = deployment(component)["spec"]["template"]["spec"]["containers"]
    (only,) = containers
    return only


def tessera_pods(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "tessera", "app.kubernetes.io/component": component}


def config(overlay: str = "base") -> dict[str, str]:
    data: dict[str, str] = named(RENDERED[overlay], "ConfigMap", "tessera-config")["data"]
    return data


def overlay_settings(overlay: str) -> Settings:
    """The services' settings in ``overlay`` (the keys directory exists only in the pod)."""
    data = config(overlay)
    return Settings.from_env({k: v for k, v in data.items() if k != "TESSERA_SIGNING_KEYS"})


def known_settings() -> set[str]:
    readme = (REPO / "README.md").read_text()
    table = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, re.MULTILINE))
    code = set(
        re.findall(
            r'"((?:TESSERA|REDIS)_[A-Z_]+)"', (REPO / "shared/config/settings.py").read_text()
        )
    )
    assert {"TESSERA_ISSUER", "REDIS_URL"} <= table & code  # the parsing still works
    return table | code


# Schemas and rendering


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("overlay", "obj"), ALL_OBJECTS)
def test_every_object_is_valid_for_the_kubernetes_api(
    overlay: str, obj: Manifest, version: str
) -> None:
    # Strict: a field the API does not know (a typo, a wrong indent) is an error.
    assert kubernetes_validate.validate(obj, version, strict=True) == version


def test_the_dev_overlay_is_the_base_plus_redis_and_the_apply_job() -> None:
    base, dev = RENDERED["base"], RENDERED["dev"]
    added = {identity(obj) for obj in dev} - {identity(obj) for obj in base}
    assert added == {
        ("Secret", "tessera-redis"),
        ("Deployment", "tessera-redis"),
        ("Service", "tessera-redis"),
        ("NetworkPolicy", "tessera-redis"),
        ("ConfigMap", apply_config_map()["metadata"]["name"]),
        ("Job", "tessera-apply"),
    }
    assert [obj for obj in dev if identity(obj) not in added] == base


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_render_agrees_with_kubectl_kustomize(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: only tests/manifests.py rendered the manifests")
    output = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS[overlay])],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    theirs = sorted(yaml.safe_load_all(output), key=identity)
    assert sorted(RENDERED[overlay], key=identity) == theirs


# Deployments


@pytest.mark.parametrize("component", COMPONENTS)
def test_deployment_runs_its_service_on_8080(component: str) -> None:
    spec = deployment(component)["spec"]
    assert spec["selector"]["matchLabels"] == tessera_pods(component)
    assert pod_labels(deployment(component)) == tessera_pods(component)
    assert spec["replicas"] >= 2
    box = container(component)
    assert box["command"] == f"python -m services.{component} --host 0.0.0.0 --port {PORT}".split()
    assert (REPO / "services" / component / "__main__.py").is_file()
    admin = [{"name": "admin", "containerPort": ADMIN_PORT}] if component == "token" else []
    assert box["ports"] == [{"name": "http", "containerPort": PORT}, *admin]
    assert box["envFrom"] == [{"configMapRef": {"name": "tessera-config"}}]


@pytest.mark.parametrize("component", COMPONENTS)
def test_deployment_probes_readiness_and_liveness(component: str) -> None:
    box = container(component)
    assert box["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert box["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


@pytest.mark.parametrize("component", COMPONENTS)
def test_deployment_has_requests_and_limits(component: str) -> None:
    resources = container(component)["resources"]
    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}


def assert_locked_down(workload: Manifest) -> None:
    """The pod runs as the image's user, without privileges, on a read-only root."""
    pod = workload["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The Dockerfile's numeric USER, so the kubelet can verify it is not root.
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (box,) = pod["containers"]
    context = box["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {mount["mountPath"]: mount["name"] for mount in box["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 - a path in the container


@pytest.mark.parametrize("component", COMPONENTS)
def test_deployment_runs_locked_down(component: str) -> None:
    assert_locked_down(deployment(component))


@pytest.mark.parametrize("component", COMPONENTS)
def test_termination_grace_outlasts_the_drain(component: str) -> None:
    grace = deployment(component)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # The drain, then time for the process to exit, before the kubelet sends SIGKILL.
    assert grace >= int(config()["TESSERA_DRAIN_SECONDS"]) + 10


@pytest.mark.parametrize("component", COMPONENTS)
def test_prometheus_scrapes_metrics_on_the_service_port(component: str) -> None:
    annotations = deployment(component)["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": "/metrics",
    }


# Secrets and settings


def secret_env(component: str) -> dict[str, tuple[str, str]]:
    refs = {}
    for variable in container(component).get("env", []):
        if "valueFrom" in variable:
            ref = variable["valueFrom"]["secretKeyRef"]
            refs[variable["name"]] = (ref["name"], ref["key"])
    return refs


def plain_env(component: str) -> dict[str, str]:
    """Settings one Deployment sets over the ConfigMap's."""
    return {v["name"]: v["value"] for v in container(component).get("env", []) if "value" in v}


def test_only_introspection_inside_the_cluster_serves_plain_http() -> None:
    assert plain_env("authorize") == {}
    # The admin API's port is inside the cluster (NetworkPolicy tessera-admin): plain
    # http, as probes and metrics, with no proxy in front and none to believe.
    assert plain_env("token") == {"TESSERA_ADMIN_PORT": str(ADMIN_PORT)}
    # Resource servers call it inside the cluster: no TLS hop, and so no proxy to believe.
    assert plain_env("introspect") == {
        "TESSERA_REQUIRE_HTTPS": "false",
        "TESSERA_TRUSTED_PROXIES": "",
    }
    settings = {**config(), **plain_env("introspect")}
    del settings["TESSERA_SIGNING_KEYS"]  # the directory exists only in the pod
    parsed = Settings.from_env(settings)
    assert (parsed.require_https, parsed.trusted_proxies) == (False, ())


def test_secrets_reach_only_the_services_that_need_them() -> None:
    redis = {"REDIS_URL": ("tessera-redis", "REDIS_URL")}
    assert secret_env("authorize") == redis
    assert secret_env("introspect") == redis
    assert secret_env("token") == {
        **redis,
        "TESSERA_ADMIN_TOKEN": ("tessera-admin", "TESSERA_ADMIN_TOKEN"),
    }
    # Secrets are supplied by the operator (deploy/README.md), never shipped in the base.
    assert of_kind(RENDERED["base"], "Secret") == []


@pytest.mark.parametrize("component", ["authorize", "token", "introspect"])
def test_signing_keys_are_a_read_only_directory(component: str) -> None:
    # Every service loads them at start: token signs, introspect verifies, authorize
    # signs the implicit grant's JWTs.
    assert config()["TESSERA_SIGNING_KEYS"] == KEYS_DIR
    pod = deployment(component)["spec"]["template"]["spec"]
    mounts = [m for m in container(component)["volumeMounts"] if m["mountPath"] == KEYS_DIR]
    (mount,) = mounts
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"] == {"secretName": "tessera-signing-keys", "defaultMode": 0o440}
    # Mode 0440 is readable by the service only through its group.
    assert pod["securityContext"]["fsGroup"] == UID


def test_the_dev_overlay_points_redis_url_at_its_redis() -> None:
    dev = RENDERED["dev"]
    url = named(dev, "Secret", "tessera-redis")["stringData"]["REDIS_URL"]
    assert url == "redis://tessera-redis:6379/0"
    service = named(dev, "Service", "tessera-redis")
    (port,) = service["spec"]["ports"]
    assert port["port"] == 6379
    redis = named(dev, "Deployment", "tessera-redis")
    assert selects(service["spec"]["selector"], pod_labels(redis))
    (box,) = redis["spec"]["template"]["spec"]["containers"]
    assert box["ports"] == [{"name": port["targetPort"], "containerPort": 6379}]


def test_config_sets_only_settings_tessera_reads() -> None:
    data = config()
    assert set(data) - known_settings() == set()
    assert data["TESSERA_REQUIRE_HTTPS"] == "true"
    assert data["TESSERA_ACCESS_TOKEN_FORMAT"] in {"opaque", "jwt"}
    assert data["TESSERA_LOG_FORMAT"] == "json"
    # Development mode and secrets have no place in a cluster's ConfigMap.
    assert "TESSERA_INSECURE_LOOPBACK" not in data
    assert "REDIS_URL" not in data
    assert "TESSERA_ADMIN_TOKEN" not in data
    # The services accept what they read (a setting they do not know yet, they ignore).
    # The keys directory exists only in the pod, so it stays out of this check.
    Settings.from_env({k: v for k, v in data.items() if k != "TESSERA_SIGNING_KEYS"})


def test_every_setting_in_the_manifests_is_documented() -> None:
    # In the top-level README's Configuration table, or in deploy/README.md.
    documented = (REPO / "README.md").read_text() + (DEPLOY / "README.md").read_text()
    names = set(config()) | {name for c in COMPONENTS for name in secret_env(c)}
    names |= {name for c in COMPONENTS for name in plain_env(c)}
    assert {name for name in names if f"`{name}`" not in documented} == set()


# The apply Job (deploy/components/apply, in the dev overlay)

APPLY_DIR = "/etc/tessera/apply"


def apply_job() -> Manifest:
    return named(RENDERED["dev"], "Job", "tessera-apply")


def apply_config_map() -> Manifest:
    (generated,) = [
        obj
        for obj in of_kind(RENDERED["dev"], "ConfigMap")
        if obj["metadata"]["name"].startswith("tessera-apply-")
    ]
    return generated


def test_the_apply_job_applies_its_config_map_with_prune() -> None:
    pod = apply_job()["spec"]["template"]["spec"]
    (box,) = pod["containers"]
    assert box["command"] == ["tessera", "apply", "-f", APPLY_DIR, "--prune"]
    assert box["image"] == container("token")["image"]
    assert pod["restartPolicy"] == "Never"
    (mount,) = [m for m in box["volumeMounts"] if m["mountPath"] == APPLY_DIR]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    # The generated ConfigMap, by its name with the hash of the documents.
    assert volume["configMap"] == {"name": apply_config_map()["metadata"]["name"]}
    assert re.fullmatch(r"tessera-apply-[a-z0-9]{10}", volume["configMap"]["name"])


def test_the_apply_job_finishes_and_goes_away() -> None:
    """A Job's template cannot change: it removes itself after it finished, so that the
    next release creates it anew, and it cannot run or retry for ever."""
    spec = apply_job()["spec"]
    assert 0 < spec["ttlSecondsAfterFinished"] <= 86400
    assert 0 < spec["activeDeadlineSeconds"] <= 3600
    assert 1 <= spec["backoffLimit"] <= 10


def test_the_apply_job_runs_locked_down() -> None:
    assert_locked_down(apply_job())


def test_the_apply_job_has_the_admin_credential_and_nothing_else_of_the_services() -> None:
    pod = apply_job()["spec"]["template"]
    (box,) = pod["spec"]["containers"]
    secrets = {
        v["name"]: (v["valueFrom"]["secretKeyRef"]["name"], v["valueFrom"]["secretKeyRef"]["key"])
        for v in box["env"]
        if "valueFrom" in v
    }
    assert secrets == {"TESSERA_ADMIN_TOKEN": ("tessera-admin", "TESSERA_ADMIN_TOKEN")}
    # Neither Redis nor the signing keys: it works through the admin API only.
    mounted = {v.get("secret", {}).get("secretName") for v in pod["spec"]["volumes"]}
    assert mounted == {None, "tessera-apply-secrets"}
    assert "tessera-config" not in str(box)
    assert pod["metadata"]["labels"]["tessera.dev/admin-client"] == "true"
    assert set(box["resources"]["limits"]) == {"cpu", "memory"}


def test_the_apply_job_reaches_the_admin_api_and_nothing_else() -> None:
    """TESSERA_ADMIN_URL is the tessera-admin Service's port, which leads to the token
    pods' admin port, where the NetworkPolicies admit the Job's pod; its pod is no
    Tessera service's, so the dev Redis does not admit it."""
    dev = RENDERED["dev"]
    template = apply_job()["spec"]["template"]
    (box,) = template["spec"]["containers"]
    url = next(v["value"] for v in box["env"] if v["name"] == "TESSERA_ADMIN_URL")
    host, port = re.fullmatch(r"http://([a-z-]+):(\d+)", url).groups()  # type: ignore[union-attr]
    assert resolve_service(dev, host, int(port)) == named(dev, "Deployment", "tessera-token")
    pod = Peer(template["metadata"]["labels"], NAMESPACE, same_namespace=True)
    assert admitted(dev, tessera_pods("token"), pod, ADMIN_PORT)
    assert not admitted(dev, pod_labels(named(dev, "Deployment", "tessera-redis")), pod, 6379)
    assert not any(admitted(dev, tessera_pods(c), pod, PORT) for c in ("authorize", "introspect"))


def test_the_dev_overlays_documents_are_accepted_by_tessera_apply(tmp_path: Path) -> None:
    """What the dev overlay's Job would apply, read by apply's own loader: a typo in a
    document fails here rather than in the cluster."""
    for name, text in apply_config_map()["data"].items():
        (tmp_path / name).write_text(text)
    desired = load([tmp_path])
    assert desired.has_managed
    assert desired.scopes and desired.clients
    for kind in ("scopes", "clients"):
        assert all(desired.is_managed(kind, name) for name in desired.of(kind))


# Services and Ingress


def resolve_service(objects: list[Manifest], name: str, port: int | str) -> Manifest:
    """The Deployment behind Service ``name``'s ``port``; fails when nothing is there."""
    service = named(objects, "Service", name)
    (entry,) = [p for p in service["spec"]["ports"] if port in (p["port"], p["name"])]
    backends = [
        d
        for d in of_kind(objects, "Deployment")
        if selects(service["spec"]["selector"], pod_labels(d))
    ]
    assert len(backends) == 1, f"Service {name} selects {len(backends)} Deployments"
    (box,) = backends[0]["spec"]["template"]["spec"]["containers"]
    target = entry["targetPort"]
    assert any(target in (p["containerPort"], p["name"]) for p in box["ports"]), name
    return backends[0]


@pytest.mark.parametrize("component", COMPONENTS)
def test_service_sends_port_80_to_its_deployment(component: str) -> None:
    service = named(RENDERED["base"], "Service", f"tessera-{component}")
    assert service["spec"]["type"] == "ClusterIP"
    assert [p["port"] for p in service["spec"]["ports"]] == [80]
    assert resolve_service(RENDERED["base"], f"tessera-{component}", 80) == deployment(component)


def test_the_admin_service_sends_its_port_to_the_token_pods_admin_port() -> None:
    service = named(RENDERED["base"], "Service", "tessera-admin")
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (ADMIN_PORT, "admin")
    assert resolve_service(RENDERED["base"], "tessera-admin", ADMIN_PORT) == deployment("token")
    # The token service reads the port it is given.
    settings = overlay_settings("base")
    token_env = {**config(), **plain_env("token")}
    del token_env["TESSERA_SIGNING_KEYS"]
    assert Settings.from_env(token_env).admin_port == ADMIN_PORT
    assert settings.admin_port == 0  # the other services serve no admin API


def ingress(overlay: str = "base") -> Manifest:
    (only,) = of_kind(RENDERED[overlay], "Ingress")
    return only


def route(path: str, overlay: str = "base") -> str | None:
    """The Service the Ingress of ``overlay`` sends ``path`` to, by the Ingress API's
    matching rules: the longest matching path wins, Exact before Prefix; Prefix matches
    whole segments."""
    candidates = []
    for rule in ingress(overlay)["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            prefix = entry["path"].rstrip("/")
            if entry["pathType"] == "Exact":
                matches = path == entry["path"]
            elif entry["pathType"] == "Prefix":
                matches = path == prefix or path.startswith(prefix + "/")
            else:
                raise AssertionError(f"pathType {entry['pathType']} is up to the controller")
            if matches:
                rank = (len(prefix), entry["pathType"] == "Exact")
                candidates.append((rank, entry["backend"]["service"]["name"]))
    return max(candidates)[1] if candidates else None


PUBLIC_ROUTES = {
    "/authorize": "tessera-authorize",
    "/authorize/resume": "tessera-authorize",
    "/login": "tessera-authorize",
    "/consent": "tessera-authorize",
    "/logout": "tessera-authorize",
    "/end_session": "tessera-authorize",
    "/connected-apps": "tessera-authorize",
    "/static/tessera.css": "tessera-authorize",
    "/.well-known/oauth-authorization-server": "tessera-authorize",
    "/token": "tessera-token",
    "/revoke": "tessera-token",
    "/jwks.json": "tessera-token",
}
INTERNAL_PATHS = [
    "/introspect",
    "/scopes",
    "/v1/clients",
    "/openapi.json",
    "/metrics",
    "/healthz",
    "/readyz",
    "/",
    "/authorize-x",
    "/token/x",
    "/connected-apps/x",
]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_never_routes_the_admin_api(overlay: str) -> None:
    backends = {
        entry["backend"]["service"]["name"]
        for rule in ingress(overlay)["spec"]["rules"]
        for entry in rule["http"]["paths"]
    }
    assert "tessera-admin" not in backends
    ports = {
        entry["backend"]["service"]["port"].get("name")
        for rule in ingress(overlay)["spec"]["rules"]
        for entry in rule["http"]["paths"]
    }
    assert ports == {"http"}
    # Nor any of its paths, to whatever Service.
    settings = overlay_settings(overlay)
    for path in served_paths(admin_app(settings)):
        assert route(path, overlay) is None, path


@pytest.mark.parametrize(("path", "service"), PUBLIC_ROUTES.items())
def test_ingress_routes_public_endpoints(path: str, service: str) -> None:
    assert route(path) == service


@pytest.mark.parametrize("path", INTERNAL_PATHS)
def test_ingress_does_not_route_internal_endpoints(path: str) -> None:
    assert route(path) is None
    assert "defaultBackend" not in ingress()["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_is_tls_on_nginx_with_real_backends(overlay: str) -> None:
    spec = ingress(overlay)["spec"]
    assert spec["ingressClassName"] == "nginx"
    (tls,) = spec["tls"]
    assert tls["secretName"]
    for rule in spec["rules"]:
        assert rule["host"] in tls["hosts"]
        for entry in rule["http"]["paths"]:
            backend = entry["backend"]["service"]
            resolve_service(RENDERED[overlay], backend["name"], backend["port"]["name"])


def served_paths(app: web.Application) -> set[str]:
    paths = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or info["prefix"] + "/"
        paths.add(re.sub(r"\{[^}]+\}", "x", path))
    return paths


@pytest.mark.parametrize("overlay", ["base", "dev-webmethods"])
@pytest.mark.parametrize(
    ("create_app", "service"),
    [
        (authorize_app, "tessera-authorize"),
        (token_app, "tessera-token"),
        (introspect_app, "tessera-introspect"),
    ],
)
def test_ingress_routes_every_public_path_a_service_serves(
    create_app: CreateApp, service: str, overlay: str
) -> None:
    # A page or endpoint added to a service without an Ingress path fails here; and with
    # webMethods Integration Server's paths on, an alias served without one.
    app = create_app(overlay_settings(overlay))
    for path in served_paths(app):
        internal = path in INTERNAL_PATHS
        internal |= ALIASES.get(path) in INTERNAL_PATHS
        assert route(path, overlay) == (None if internal else service), path


# webMethods Integration Server's paths: the webmethods-paths component


def test_the_webmethods_component_turns_the_paths_on_and_routes_them_and_nothing_else() -> None:
    dev, with_paths = RENDERED["dev"], RENDERED["dev-webmethods"]
    assert [identity(obj) for obj in with_paths] == [identity(obj) for obj in dev]
    changed = [identity(b) for a, b in zip(dev, with_paths, strict=True) if a != b]
    assert changed == [("ConfigMap", "tessera-config"), ("Ingress", "tessera")]
    # The setting, off in the base, on with the component; the services read it so.
    assert config("base")["TESSERA_WEBMETHODS_PATHS"] == "false"
    assert config("dev-webmethods") == {**config("base"), "TESSERA_WEBMETHODS_PATHS": "true"}
    assert not overlay_settings("base").webmethods_paths
    assert overlay_settings("dev-webmethods").webmethods_paths
    # The Ingress: the base's paths, then the aliases' (no other rule, host or TLS).
    base_paths = ingress("base")["spec"]["rules"][0]["http"]["paths"]
    paths = ingress("dev-webmethods")["spec"]["rules"][0]["http"]["paths"]
    assert paths[: len(base_paths)] == base_paths
    assert {entry["path"] for entry in paths[len(base_paths) :]} <= set(ALIASES)
    assert {**ingress("dev-webmethods")["spec"], "rules": []} == {
        **ingress("base")["spec"],
        "rules": [],
    }


@pytest.mark.parametrize(("alias", "path"), ALIASES.items())
def test_the_webmethods_component_routes_each_alias_as_the_path_it_serves(
    alias: str, path: str
) -> None:
    # getToken to token as /token; introspectToken nowhere, as /introspect.
    assert route(alias, "dev-webmethods") == route(path, "dev-webmethods")
    assert route(alias, "base") is None


# NetworkPolicies

NAMESPACE = {"kubernetes.io/metadata.name": "tessera"}
INGRESS_CONTROLLER = Peer(
    {"app.kubernetes.io/name": "ingress-nginx"},
    {"kubernetes.io/metadata.name": "ingress-nginx"},
)
RESOURCE_SERVER = Peer(
    {"tessera.io/resource-server": "true"}, {"kubernetes.io/metadata.name": "shop"}
)
ADMIN_CLIENT = Peer({"tessera.dev/admin-client": "true"}, NAMESPACE, same_namespace=True)
# Labelled so, but in another namespace: whoever may create pods there is not trusted here.
ADMIN_CLIENT_ELSEWHERE = Peer(
    {"tessera.dev/admin-client": "true"}, {"kubernetes.io/metadata.name": "ops"}
)
PROMETHEUS = Peer(
    {"app.kubernetes.io/name": "prometheus"}, {"kubernetes.io/metadata.name": "monitoring"}
)
NEIGHBOUR = Peer({"app": "something-else"}, NAMESPACE, same_namespace=True)
OTHER_IN_MONITORING = Peer({"app.kubernetes.io/name": "grafana"}, PROMETHEUS.namespace_labels)
TESSERA_POD = Peer(tessera_pods("token"), NAMESPACE, same_namespace=True)

PEERS = {
    "ingress controller": (INGRESS_CONTROLLER, {"authorize", "token"}),
    "resource server": (RESOURCE_SERVER, {"introspect"}),
    "admin client": (ADMIN_CLIENT, set()),
    "admin client elsewhere": (ADMIN_CLIENT_ELSEWHERE, set()),
    "prometheus": (PROMETHEUS, {"authorize", "token", "introspect"}),
    "neighbour pod": (NEIGHBOUR, set()),
    "grafana": (OTHER_IN_MONITORING, set()),
}


@pytest.mark.parametrize(("peer", "reaches"), PEERS.values(), ids=PEERS)
def test_network_policies_admit_exactly(peer: Peer, reaches: set[str]) -> None:
    for overlay in RENDERED.values():
        allowed = {c for c in COMPONENTS if admitted(overlay, tessera_pods(c), peer, PORT)}
        assert allowed == reaches
        # Nothing is admitted on a port the services do not listen on.
        assert not any(admitted(overlay, tessera_pods(c), peer, 6379) for c in COMPONENTS)


@pytest.mark.parametrize(("peer", "reaches"), PEERS.values(), ids=PEERS)
def test_only_admin_clients_of_the_namespace_reach_the_admin_port(
    peer: Peer, reaches: set[str]
) -> None:
    for overlay in RENDERED.values():
        allowed = {c for c in COMPONENTS if admitted(overlay, tessera_pods(c), peer, ADMIN_PORT)}
        assert allowed == ({"token"} if peer is ADMIN_CLIENT else set())
    # The policy that admits them selects the token pods, on that port alone.
    policy = named(RENDERED["base"], "NetworkPolicy", "tessera-admin")
    assert selects(policy["spec"]["podSelector"], tessera_pods("token"))
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": ADMIN_PORT}]


def test_network_policies_select_existing_pods_on_their_ports() -> None:
    for objects in RENDERED.values():
        for policy in of_kind(objects, "NetworkPolicy"):
            pods = [
                d
                for d in of_kind(objects, "Deployment")
                if selects(policy["spec"]["podSelector"], pod_labels(d))
            ]
            assert pods, f"NetworkPolicy {policy['metadata']['name']} selects no pods"
            ports = {
                p["containerPort"]
                for d in pods
                for box in d["spec"]["template"]["spec"]["containers"]
                for p in box["ports"]
            }
            for rule in policy["spec"]["ingress"]:
                assert {p["port"] for p in rule["ports"]} <= ports


def test_only_tessera_reaches_the_dev_redis() -> None:
    redis = pod_labels(named(RENDERED["dev"], "Deployment", "tessera-redis"))
    assert admitted(RENDERED["dev"], redis, TESSERA_POD, 6379)
    for peer, _ in PEERS.values():
        assert not admitted(RENDERED["dev"], redis, peer, 6379)


def test_network_policy_labels_are_documented() -> None:
    documented = (DEPLOY / "README.md").read_text()
    labels = set()
    for policy in of_kind(RENDERED["dev"], "NetworkPolicy"):
        for rule in policy["spec"]["ingress"]:
            for source in rule["from"]:
                for selector in source.values():
                    labels |= set(selector.get("matchLabels", {}).items())
    assert len(labels) >= 5
    assert {f"{k}={v}" for k, v in labels if f"`{k}={v}`" not in documented} == set()


# Autoscaling and disruption budgets


@pytest.mark.parametrize("component", COMPONENTS)
def test_autoscaler_keeps_two_replicas_and_scales_on_cpu(component: str) -> None:
    hpa = named(RENDERED["base"], "HorizontalPodAutoscaler", f"tessera-{component}")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"tessera-{component}",
    }
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # Utilization is measured against the request, so there must be one.
    assert "cpu" in container(component)["resources"]["requests"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_disruption_budget_keeps_one_pod_of_its_service(component: str) -> None:
    budget = named(RENDERED["base"], "PodDisruptionBudget", f"tessera-{component}")["spec"]
    assert budget["minAvailable"] == 1
    covered = [
        d["metadata"]["name"]
        for d in of_kind(RENDERED["dev"], "Deployment")
        if selects(budget["selector"], pod_labels(d))
    ]
    assert covered == [f"tessera-{component}"]


# Rolling updates


def readme_section(title: str) -> str:
    """The text under a heading of the top-level README, up to the next heading."""
    readme = (REPO / "README.md").read_text()
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#)", readme, re.MULTILINE | re.DOTALL)
    assert match, f"the README has no section {title!r}"
    return match.group(1)


@pytest.mark.parametrize("component", COMPONENTS)
def test_an_update_rolls_in_one_ready_pod_at_a_time_as_the_readme_says(component: str) -> None:
    """Old and new releases serve side by side while a Deployment rolls, which the
    records allow (shared/domain/records.py); the README states the same strategy."""
    strategy = deployment(component)["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    section = readme_section("Rolling updates")
    assert "`maxUnavailable: 0`" in section
    assert "`maxSurge: 1`" in section


# Dockerfile


def stages() -> list[Stage]:
    return dockerfile_stages((REPO / "Dockerfile").read_text())


def test_dockerfile_runs_from_slim_python_as_a_numeric_user() -> None:
    build, final = stages()
    assert re.fullmatch(r"python:3\.11-slim(-[a-z]+)?", final.base)
    # The venv's interpreter is a link into the base image: both stages must share it.
    assert build.base == final.base
    (user,) = final.arguments("USER")
    assert re.fullmatch(rf"{UID}(:{UID})?", user)
    (command,) = final.arguments("CMD")
    assert command.startswith('["python", "-m", "services.')


def test_dockerfile_final_stage_has_no_build_tools() -> None:
    build, final = stages()
    for run in final.arguments("RUN"):
        assert not re.search(r"apt-get install|apt install|gcc|build-essential|pip install", run)
    # Everything installed comes from the build stage, as a whole venv.
    assert final.arguments("COPY") == [f"--from={build.name} /opt/tessera /opt/tessera"]
    assert any("uninstall --yes pip setuptools wheel" in run for run in final.arguments("RUN"))


def test_dockerfile_installs_the_project_without_extras() -> None:
    build, _ = stages()
    installs = [run for run in build.arguments("RUN") if " install " in run]
    assert installs
    assert all(re.search(r"install \.(\s|$)", run) for run in installs)
    text = "\n".join(rest for stage in stages() for _, rest in stage.instructions)
    assert "[local" not in text
    assert "[test" not in text


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    build, _ = stages()
    copied = {
        source
        for arguments in build.arguments("COPY")
        for source in arguments.split()[:-1]
        if not source.startswith("--")
    }
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert included == copied


def test_the_installed_package_carries_every_file_it_reads() -> None:
    """The image installs the project as a wheel (``pip install .``), which holds besides
    the modules only the files pyproject.toml's package-data names: the templates, the
    stylesheet, the Lua scripts."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    carried = {
        path
        for package, patterns in package_data.items()
        for pattern in patterns
        for path in (REPO / package.replace(".", "/")).glob(pattern)
    }
    files = {
        path
        for top in ("services", "shared")
        for path in (REPO / top).rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    assert any(path.suffix == ".lua" for path in files)
    assert files == carried
