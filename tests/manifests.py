"""Read the deployment files as the tests need them: kustomizations, NetworkPolicies and
the Dockerfile.

``render`` follows a kustomization's ``resources``, ``components`` and
``configMapGenerator`` (files only, named with kustomize's hash suffix, and the pod
templates' references to them renamed), and a component's ``resources`` and JSON patches
(RFC 6902's ``add`` and ``replace``, each on one object named by kind and name), and
refuses any other field, so it cannot silently render something other than what
``kubectl kustomize`` would. ``tests/test_deploy.py`` also compares the two where kubectl
is installed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"

Manifest = dict[str, Any]

# The fields rendered, by the kind of kustomization.
_RENDERED_FIELDS = {
    "Kustomization": {"apiVersion", "kind", "resources", "components", "configMapGenerator"},
    "Component": {"apiVersion", "kind", "resources", "patches"},
}


def _kustomization(directory: Path, kind: str) -> Manifest:
    kustomization: Manifest = yaml.safe_load((directory / "kustomization.yaml").read_text())
    found = kustomization.get("kind", "Kustomization")
    if found != kind:
        raise ValueError(f"{directory.name}/kustomization.yaml: a {found}, not a {kind}")
    unsupported = set(kustomization) - _RENDERED_FIELDS[kind]
    if unsupported:
        raise ValueError(
            f"{directory.name}/kustomization.yaml uses {sorted(unsupported)}, "
            "which tests/manifests.py does not render"
        )
    return kustomization


def _resources(directory: Path, entries: list[str]) -> list[Manifest]:
    objects: list[Manifest] = []
    for entry in entries:
        path = (directory / entry).resolve()
        if path.is_dir():
            objects += render(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return objects


def render(directory: Path) -> list[Manifest]:
    """The objects the kustomization in ``directory`` produces, in resource order, then
    the ConfigMaps it generates, then its components' resources, with the components'
    patches applied."""
    kustomization = _kustomization(directory, "Kustomization")
    objects = _resources(directory, kustomization["resources"])
    generators = kustomization.get("configMapGenerator", [])
    generated = [_generated_config_map(directory, generator) for generator in generators]
    objects += generated
    components = []
    for entry in kustomization.get("components", []):
        component_dir = (directory / entry).resolve()
        component = _kustomization(component_dir, "Component")
        components.append((component_dir, component))
        objects += _resources(component_dir, component.get("resources", []))
    names = [identity(obj) for obj in objects]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        # kustomize refuses this too.
        raise ValueError(f"{directory.name}: defined more than once: {sorted(duplicates)}")
    for component_dir, component in components:
        for patch in component.get("patches", []):
            _apply_patch(component_dir, patch, objects)
    for config_map in generated:
        _rename_config_map(objects, config_map)
    return objects


def _generated_config_map(directory: Path, generator: Manifest) -> Manifest:
    """A configMapGenerator entry with ``files``: a ConfigMap whose data are the files,
    by name, and whose name ends in kustomize's hash of its content."""
    if set(generator) != {"name", "files"}:
        raise NotImplementedError(f"configMapGenerator {generator}: extend tests/manifests.py")
    data = {Path(file).name: (directory / file).read_text() for file in generator["files"]}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{generator['name']}-{_kustomize_hash(data)}"},
        "data": data,
        # The name the manifests refer to it by; dropped once references are renamed.
        "_generated_as": generator["name"],
    }


def _kustomize_hash(data: dict[str, str]) -> str:
    """kustomize's name suffix for a generated ConfigMap (api/hasher): the SHA-256 of Go's
    JSON encoding of its kind, data and name (empty when hashed), sorted keys, HTML
    characters escaped; the first ten hex digits, with 0, 1, 3, a and e replaced so that
    the suffix never reads as a word or a number."""
    encoded = json.dumps(
        {"data": data, "kind": "ConfigMap", "name": ""},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        encoded = encoded.replace(char, escape)
    digits = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digits.translate(str.maketrans("013ae", "ghkmt"))


def _rename_config_map(objects: list[Manifest], config_map: Manifest) -> None:
    """The pod templates' volumes and envFrom that name a generated ConfigMap, renamed."""
    old, new = config_map.pop("_generated_as"), config_map["metadata"]["name"]
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for volume in pod.get("volumes", []):
            if volume.get("configMap", {}).get("name") == old:
                volume["configMap"]["name"] = new
        for container in pod.get("containers", []):
            for source in container.get("envFrom", []):
                if source.get("configMapRef", {}).get("name") == old:
                    source["configMapRef"]["name"] = new


def _apply_patch(directory: Path, patch: Manifest, objects: list[Manifest]) -> None:
    """A JSON patch (RFC 6902), inline or in a file, to the one object it targets."""
    target = patch["target"]
    if set(target) != {"kind", "name"} or set(patch) - {"target", "patch", "path"}:
        raise NotImplementedError(f"patch {patch}: extend tests/manifests.py")
    text = patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text()
    # A patch that matches nothing would change nothing, silently: refused here.
    (obj,) = [o for o in objects if identity(o) == (target["kind"], target["name"])]
    for operation in yaml.safe_load(text):
        _apply_operation(obj, operation)


def _apply_operation(obj: Manifest, operation: Manifest) -> None:
    """One ``add`` or ``replace`` (RFC 6902 §4.1, §4.3) at a JSON pointer (RFC 6901)."""
    op, value = operation["op"], operation["value"]
    *parents, last = [
        token.replace("~1", "/").replace("~0", "~") for token in operation["path"].split("/")[1:]
    ]
    container: Any = obj
    for token in parents:
        container = container[int(token)] if isinstance(container, list) else container[token]
    if op == "add" and isinstance(container, list):
        # "-" appends; an index inserts before the element there.
        container.insert(len(container) if last == "-" else int(last), value)
    elif op == "add":
        container[last] = value
    # RFC 6902 §4.3: the target location of a replace must exist.
    elif op == "replace" and isinstance(container, list):
        container[int(last)] = value  # IndexError past the end
    elif op == "replace":
        if last not in container:
            raise KeyError(f"replace {operation['path']}: nothing there")
        container[last] = value
    else:
        raise NotImplementedError(f"JSON patch op {op!r}: extend tests/manifests.py")


def identity(obj: Manifest) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: list[Manifest], kind: str, name: str) -> Manifest:
    (obj,) = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    return obj


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """A LabelSelector (``matchLabels`` only) or a Service's plain selector map."""
    if "matchExpressions" in selector:
        raise NotImplementedError("matchExpressions: extend tests/manifests.py")
    wanted = selector.get("matchLabels", {}) if "matchLabels" in selector else selector
    return all(labels.get(key) == value for key, value in wanted.items())


def pod_labels(deployment: Manifest) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


# NetworkPolicy, ingress direction only: https://kubernetes.io/docs/concepts/services-networking/network-policies/


@dataclass(frozen=True)
class Peer:
    """A pod that opens a connection to one of ours."""

    pod_labels: dict[str, str]
    namespace_labels: dict[str, str] = field(default_factory=dict)
    # A podSelector without a namespaceSelector means the policy's own namespace.
    same_namespace: bool = False


def admitted(objects: list[Manifest], target: dict[str, str], peer: Peer, port: int) -> bool:
    """Whether the policies among ``objects`` let ``peer`` reach pods labelled ``target``."""
    policies = [
        policy
        for policy in of_kind(objects, "NetworkPolicy")
        if "Ingress" in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], target)
    ]
    if not policies:
        return True  # A pod no policy selects is open to all.
    # Policies add up: any rule of any selecting policy may admit the connection.
    return any(
        _rule_admits(rule, peer, port)
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
    )


def _rule_admits(rule: Manifest, peer: Peer, port: int) -> bool:
    ports = rule.get("ports")
    if ports and not any(_port_matches(entry, port) for entry in ports):
        return False
    sources = rule.get("from")
    return not sources or any(_source_matches(source, peer) for source in sources)


def _port_matches(entry: Manifest, port: int) -> bool:
    number = entry.get("port")
    if not isinstance(number, int) or "endPort" in entry:
        raise NotImplementedError(f"port {entry}: extend tests/manifests.py")
    return entry.get("protocol", "TCP") == "TCP" and number == port


def _source_matches(source: Manifest, peer: Peer) -> bool:
    if "ipBlock" in source:
        raise NotImplementedError("ipBlock: extend tests/manifests.py")
    namespaces = source.get("namespaceSelector")
    pods = source.get("podSelector")
    in_namespace = (
        peer.same_namespace if namespaces is None else selects(namespaces, peer.namespace_labels)
    )
    # Both selectors in one entry must match the same peer.
    return in_namespace and (pods is None or selects(pods, peer.pod_labels))


# Dockerfile


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]]

    def arguments(self, keyword: str) -> list[str]:
        return [rest for word, rest in self.instructions if word == keyword]


def dockerfile_stages(text: str) -> list[Stage]:
    """The build stages in order, each with its instructions (keyword, arguments)."""
    stages: list[Stage] = []
    for instruction in _instructions(text):
        keyword, _, rest = instruction.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.IGNORECASE)
            assert match, f"unreadable FROM: {rest}"
            stages.append(Stage(match[1], match[2], []))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def _instructions(text: str) -> list[str]:
    """Instructions with their continuation lines joined and comment lines dropped."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append((pending + line).strip())
        pending = ""
    if pending:
        joined.append(pending.strip())
    return joined
