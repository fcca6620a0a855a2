"""Packaging: the Kubernetes manifests, rendered and validated offline, and the image, proven with podman.

Rendering uses real kustomize (`kubectl kustomize` or `kustomize build`, v4 or later) when the machine
has it, else a small renderer for exactly the subset packaging/manifests uses; when both exist their
outputs must be equal. Validation uses kubernetes-validate in strict mode; the two kinds it has no
schema for (NetworkAttachmentDefinition, SecurityContextConstraints) are checked structurally.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import BINARY, ROOT

MANIFESTS = ROOT / "packaging" / "manifests"
OVERLAYS = {
    "default": "/opt/cni/bin",
    "k3s": "/var/lib/rancher/k3s/data/cni",
    "openshift": "/var/lib/cni/bin",
}
# Each distribution's CNI config dir, which the repair loop's doctor checks read.
CONF_DIRS = {
    "default": "/etc/cni/net.d",
    "k3s": "/var/lib/rancher/k3s/agent/etc/cni/net.d",
    "openshift": "/etc/kubernetes/cni/net.d",
}
METRICS_DIR = "/var/lib/node_exporter/textfile_collector"
LOG_DIR = "/var/log/host-device"  # the README's logFile example: repair writes there too
EXAMPLES = sorted((MANIFESTS / "examples").glob("*.yaml"))
STATE_DIR = "/var/lib/cni/host-device"
IN_CONTAINER_BIN_DIR = "/host/opt/cni/bin"
# The newest Kubernetes schema kubernetes-validate ships, and an older release still in wide use.
OLDER_K8S = "1.30"
NAD_API = "k8s.cni.cncf.io/v1"
SCC_API = "security.openshift.io/v1"
Obj = dict[str, Any]


# --- helpers -------------------------------------------------------------------------------------------


# Both are installed by `make` (pip install -e '.[dev]'): missing is a failure, not a skip.
@pytest.fixture(scope="module")
def yaml() -> ModuleType:
    import yaml as module

    return module


@pytest.fixture(scope="module")
def kv() -> ModuleType:
    import importlib

    module: ModuleType = importlib.import_module("kubernetes_validate")
    return module


def load_docs(yaml: ModuleType, path: Path) -> list[Obj]:
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def key(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj.get("metadata", {})
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(part) for part in match.groups()) if match else (0,)


def kustomize_command() -> list[str] | None:
    """A real kustomize (v4+) on this machine, as an argv prefix taking a directory, or None."""
    if exe := shutil.which("kustomize"):
        out = subprocess.run([exe, "version"], capture_output=True, text=True)
        if _version_tuple(out.stdout) >= (4, 0, 0):
            return [exe, "build"]
    if exe := shutil.which("kubectl"):
        out = subprocess.run([exe, "version", "--client", "-o", "json"], capture_output=True, text=True)
        try:
            version = json.loads(out.stdout).get("kustomizeVersion", "")
        except json.JSONDecodeError:
            version = ""
        if _version_tuple(version) >= (4, 0, 0):
            return [exe, "kustomize"]
    return None


# A strategic merge patch as kustomize applies it to the fields our patches touch: maps merge, these
# lists merge their items by the key (volumes also "retainKeys": a patched item keeps only the keys
# the patch names), every other value is replaced.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
}
RETAIN_KEYS = {"volumes"}


def strategic_merge(base: Obj, patch: Obj) -> None:
    for name, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(name), dict):
            strategic_merge(base[name], value)
        elif isinstance(value, list) and name in MERGE_KEYS and isinstance(base.get(name), list):
            merge_key = MERGE_KEYS[name]
            for item in value:
                match = next((b for b in base[name] if b.get(merge_key) == item.get(merge_key)), None)
                if match is None:
                    base[name].append(copy.deepcopy(item))
                    continue
                strategic_merge(match, item)
                if name in RETAIN_KEYS:
                    for stale in set(match) - set(item):
                        del match[stale]
        else:
            base[name] = copy.deepcopy(value)


def _pod_containers(obj: Obj) -> Iterator[Obj]:
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec", spec)
    for field in ("initContainers", "containers"):
        yield from pod.get(field, [])


def _set_image(container: Obj, images: list[Obj]) -> None:
    match = re.fullmatch(r"(?P<name>[^@]+?)(?::(?P<tag>[^:/@]+))?(?:@(?P<digest>.+))?", container["image"])
    assert match, container["image"]
    for image in images:
        if image["name"] == match["name"]:
            name = image.get("newName", match["name"])
            tag = image.get("newTag", match["tag"])
            container["image"] = f"{name}:{tag}" if tag else name


def builtin_render(yaml: ModuleType, directory: Path) -> list[Obj]:
    """kustomize build for the subset used here: resources, images (newName/newTag), patches (SMP by path)."""
    kustomization = load_docs(yaml, directory / "kustomization.yaml")[0]
    supported = {"apiVersion", "kind", "resources", "images", "patches"}
    assert set(kustomization) <= supported, f"the built-in renderer does not know {set(kustomization) - supported}"
    objects: list[Obj] = []
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        objects += builtin_render(yaml, path) if path.is_dir() else load_docs(yaml, path)
    for entry in kustomization.get("patches", []):
        assert set(entry) == {"path"}, f"the built-in renderer applies only patch files: {entry}"
        for patch in load_docs(yaml, directory / entry["path"]):
            targets = [
                o for o in objects if (o["kind"], o["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
            ]
            assert len(targets) == 1, f"patch {entry['path']} matches {len(targets)} objects"
            strategic_merge(targets[0], {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")})
    for obj in objects:
        for container in _pod_containers(obj):
            _set_image(container, kustomization.get("images", []))
    return objects


def render(yaml: ModuleType, directory: Path) -> list[Obj]:
    command = kustomize_command()
    if command is None:
        return builtin_render(yaml, directory)
    out = subprocess.run([*command, str(directory)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc is not None]


@pytest.fixture(scope="module")
def rendered(yaml: ModuleType) -> dict[str, list[Obj]]:
    dirs = {"base": MANIFESTS / "base", **{name: MANIFESTS / "overlays" / name for name in OVERLAYS}}
    return {name: render(yaml, path) for name, path in dirs.items()}


def one(objects: list[Obj], kind: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def pod_spec(objects: list[Obj]) -> Obj:
    spec: Obj = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    return spec


def container(spec: Obj, field: str, name: str) -> Obj:
    found: list[Obj] = [c for c in spec[field] if c["name"] == name]
    assert len(found) == 1
    return found[0]


def volume(spec: Obj, name: str) -> Obj:
    found: list[Obj] = [v for v in spec["volumes"] if v["name"] == name]
    assert len(found) == 1
    return found[0]


def plugin_version() -> str:
    text = (ROOT / "cni_hostdev" / "__init__.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    assert match
    return match.group(1)


# --- rendering -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["base", *OVERLAYS])
def test_overlay_renders(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    assert len({key(o) for o in objects}) == len(objects), "duplicate objects"
    daemonset = one(objects, "DaemonSet")
    assert daemonset["metadata"]["namespace"] == "kube-system"
    assert one(objects, "ServiceAccount")["metadata"]["name"] == pod_spec(objects)["serviceAccountName"]


def test_builtin_renderer_matches_kustomize(yaml: ModuleType) -> None:
    if kustomize_command() is None:
        pytest.skip("no kustomize (v4+) or kubectl on this machine to compare the built-in renderer with")
    for directory in [MANIFESTS / "base", *(MANIFESTS / "overlays" / name for name in OVERLAYS)]:
        ours = {key(o): o for o in builtin_render(yaml, directory)}
        theirs = {key(o): o for o in render(yaml, directory)}
        assert ours == theirs, f"built-in renderer differs from kustomize for {directory.name}"


def test_overlays_differ_only_where_they_should(rendered: dict[str, list[Obj]]) -> None:
    default = {key(o): o for o in rendered["default"]}
    for overlay in ("k3s", "openshift"):
        objects = {key(o): copy.deepcopy(o) for o in rendered[overlay]}
        spec = pod_spec(list(objects.values()))
        volume(spec, "cni-bin")["hostPath"]["path"] = OVERLAYS["default"]
        volume(spec, "cni-conf")["hostPath"]["path"] = CONF_DIRS["default"]
        container(spec, "initContainers", "install")["env"][0]["value"] = OVERLAYS["default"]
        spec.get("securityContext", {}).pop("seLinuxOptions", None)
        extra = set(objects) - set(default)
        expected_extra = (
            {"ClusterRole", "RoleBinding", "SecurityContextConstraints"} if overlay == "openshift" else set()
        )
        assert {k[1] for k in extra} == expected_extra
        assert {k: v for k, v in objects.items() if k not in extra} == default, overlay


# --- offline schema validation -------------------------------------------------------------------------


def _k8s_versions(kv: ModuleType) -> list[str]:
    latest = kv.latest_version()
    assert tuple(int(p) for p in latest.split(".")[:2]) >= (1, 34), f"kubernetes-validate {latest} is too old"
    return [latest, OLDER_K8S]


def validate_structurally(obj: Obj) -> None:
    if obj["kind"] == "NetworkAttachmentDefinition":
        check_nad(obj)
    elif obj["kind"] == "SecurityContextConstraints":
        check_scc(obj)
    else:
        raise AssertionError(f"no schema and no structural check for {obj['apiVersion']} {obj['kind']}")


def validate(kv: ModuleType, obj: Obj) -> None:
    if obj["apiVersion"] in (NAD_API, SCC_API):
        validate_structurally(obj)
        return
    for version in _k8s_versions(kv):
        kv.validate(obj, version, strict=True)


@pytest.mark.parametrize("overlay", ["base", *OVERLAYS])
def test_rendered_objects_validate_strictly(kv: ModuleType, rendered: dict[str, list[Obj]], overlay: str) -> None:
    for obj in rendered[overlay]:
        validate(kv, obj)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate(kv: ModuleType, yaml: ModuleType, path: Path) -> None:
    docs = load_docs(yaml, path)
    assert docs
    for obj in docs:
        validate(kv, obj)


def test_strict_validation_rejects_a_typo(kv: ModuleType, rendered: dict[str, list[Obj]]) -> None:
    daemonset = copy.deepcopy(one(rendered["default"], "DaemonSet"))
    daemonset["spec"]["template"]["spec"]["hostNetwrok"] = True
    with pytest.raises(kv.ValidationError):
        kv.validate(daemonset, kv.latest_version(), strict=True)
    with pytest.raises(kv.SchemaNotFoundError):
        kv.validate({"apiVersion": NAD_API, "kind": "NetworkAttachmentDefinition"}, kv.latest_version(), strict=True)


# --- structural checks for the two custom kinds ------------------------------------------------------

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def check_metadata(obj: Obj, *, namespaced: bool) -> None:
    meta = obj["metadata"]
    assert set(meta) <= {"name", "namespace", "labels", "annotations"}, meta
    assert DNS1123.match(meta["name"]) and len(meta["name"]) <= 253, meta["name"]
    assert ("namespace" in meta) == namespaced
    for field in ("labels", "annotations"):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.get(field, {}).items()), field


def parse_cni_config(text: str) -> tuple[Obj, list[Obj]]:
    """spec.config as Multus reads it: (the network, the host-device plugin configs as libcni hands them over)."""
    conf = json.loads(text)
    assert isinstance(conf, dict)
    assert isinstance(conf.get("cniVersion"), str) and isinstance(conf.get("name"), str)
    if "plugins" not in conf:
        assert conf.get("type") == "host-device", conf
        return conf, [conf]
    assert isinstance(conf["plugins"], list) and conf["plugins"], "a conflist needs plugins"
    assert all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in conf["plugins"])
    plugins = [
        {**p, "name": conf["name"], "cniVersion": conf["cniVersion"]}
        for p in conf["plugins"]
        if p["type"] == "host-device"
    ]
    assert plugins, "no plugin of type host-device in the conflist"
    return conf, plugins


def check_nad(obj: Obj) -> None:
    assert obj["apiVersion"] == NAD_API and obj["kind"] == "NetworkAttachmentDefinition"
    assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}
    check_metadata(obj, namespaced=True)
    assert set(obj["spec"]) == {"config"} and isinstance(obj["spec"]["config"], str)
    conf, _ = parse_cni_config(obj["spec"]["config"])
    assert conf["name"] == obj["metadata"]["name"], "by convention the network is named after its NAD"


SCC_REQUIRED = {
    "allowHostDirVolumePlugin", "allowHostIPC", "allowHostNetwork", "allowHostPID", "allowHostPorts",
    "allowPrivilegedContainer", "allowedCapabilities", "defaultAddCapabilities", "priority",
    "readOnlyRootFilesystem", "requiredDropCapabilities", "volumes",
}  # fmt: skip
SCC_FIELDS = SCC_REQUIRED | {
    "apiVersion", "kind", "metadata", "allowPrivilegeEscalation", "allowedFlexVolumes", "allowedUnsafeSysctls",
    "defaultAllowPrivilegeEscalation", "forbiddenSysctls", "fsGroup", "groups", "runAsUser", "seLinuxContext",
    "seccompProfiles", "supplementalGroups", "users",
}  # fmt: skip
STRATEGIES = {
    "runAsUser": {"MustRunAs", "MustRunAsRange", "MustRunAsNonRoot", "RunAsAny"},
    "seLinuxContext": {"MustRunAs", "RunAsAny"},
    "fsGroup": {"MustRunAs", "RunAsAny"},
    "supplementalGroups": {"MustRunAs", "RunAsAny"},
}


def check_scc(obj: Obj) -> None:
    assert obj["apiVersion"] == SCC_API and obj["kind"] == "SecurityContextConstraints"
    assert SCC_REQUIRED <= set(obj) <= SCC_FIELDS, set(obj) ^ SCC_FIELDS
    check_metadata(obj, namespaced=False)
    for field, value in obj.items():
        if field.startswith("allow") and field not in (
            "allowedCapabilities",
            "allowedFlexVolumes",
            "allowedUnsafeSysctls",
        ):
            assert isinstance(value, bool), field
    for field in (
        "allowedCapabilities",
        "defaultAddCapabilities",
        "requiredDropCapabilities",
        "volumes",
        "users",
        "groups",
    ):
        assert isinstance(obj.get(field, []), list), field
    for field, allowed in STRATEGIES.items():
        assert obj[field]["type"] in allowed, field
    assert obj["priority"] is None or isinstance(obj["priority"], int)


# --- what the manifests promise ------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_cni_bin_dir_is_the_platforms_and_consistent(rendered: dict[str, list[Obj]], overlay: str) -> None:
    spec = pod_spec(rendered[overlay])
    cni_bin = volume(spec, "cni-bin")["hostPath"]
    assert cni_bin == {"path": OVERLAYS[overlay], "type": "Directory"}
    install = container(spec, "initContainers", "install")
    command = install["command"]
    assert command[:2] == ["/host-device", "install"]
    assert command[command.index("--bin-dir") + 1] == IN_CONTAINER_BIN_DIR
    assert command[command.index("--node-bin-dir") + 1] == "$(NODE_CNI_BIN_DIR)"
    env = {e["name"]: e["value"] for e in install["env"]}
    assert env["NODE_CNI_BIN_DIR"] == OVERLAYS[overlay], "the launcher's loader path must be the node's bin dir"
    assert {m["mountPath"]: m["name"] for m in install["volumeMounts"]}[IN_CONTAINER_BIN_DIR] == "cni-bin"


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_state_dir_is_the_plugins_default(rendered: dict[str, list[Obj]], overlay: str) -> None:
    from cni_hostdev.config import DEFAULT_DATA_DIR

    spec = pod_spec(rendered[overlay])
    assert volume(spec, "state")["hostPath"] == {"path": STATE_DIR, "type": "DirectoryOrCreate"}
    repair = container(spec, "containers", "repair")
    command = repair["command"]
    assert command[:2] == ["/host-device", "repair"]
    assert command[command.index("--data-dir") + 1] == STATE_DIR == DEFAULT_DATA_DIR
    mounts = {m["mountPath"]: m for m in repair["volumeMounts"]}
    assert mounts[STATE_DIR]["name"] == "state" and not mounts[STATE_DIR].get("readOnly", False)


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_least_privilege(rendered: dict[str, list[Obj]], overlay: str) -> None:
    spec = pod_spec(rendered[overlay])
    assert spec["hostNetwork"] is True and spec["hostPID"] is False and spec.get("hostIPC", False) is False
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    expected_caps = {"install": set(), "repair": {"NET_ADMIN", "SYS_ADMIN"}}
    for field in ("initContainers", "containers"):
        for c in spec[field]:
            sc = c["securityContext"]
            assert sc.get("privileged", False) is False, c["name"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert set(sc["capabilities"].get("add", [])) == expected_caps[c["name"]], c["name"]
            assert not c.get("ports"), c["name"]
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) == {"cpu", "memory"}, (c["name"], kind)
            tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp and volume(spec, tmp[0]["name"]).get("emptyDir") is not None, "the binary unpacks into /tmp"
    install = container(spec, "initContainers", "install")
    assert {m["name"] for m in install["volumeMounts"]} == {"cni-bin", "tmp"}
    repair = container(spec, "containers", "repair")
    netns = {m["mountPath"]: m for m in repair["volumeMounts"] if m["name"] == "netns"}
    assert set(netns) == {"/run/netns", "/var/run/netns"}
    for mount in netns.values():
        assert mount["readOnly"] is True and mount["mountPropagation"] == "HostToContainer"
    assert volume(spec, "netns")["hostPath"]["path"] == "/run/netns"
    run = {m["mountPath"]: m for m in repair["volumeMounts"] if m["name"] == "run"}
    assert set(run) == {"/run/cni-hostdev"} and run["/run/cni-hostdev"]["mountPropagation"] == "HostToContainer"
    assert volume(spec, "run")["hostPath"]["path"] == "/run/cni-hostdev", "staging netns of interrupted ADDs"
    mounted = {m["name"] for m in repair["volumeMounts"]}
    assert mounted == {"state", "netns", "run", "cni-conf", "metrics", "logs", "tmp"}
    logs = {m["mountPath"]: m for m in repair["volumeMounts"] if m["name"] == "logs"}
    assert set(logs) == {LOG_DIR} and volume(spec, "logs")["hostPath"]["path"] == LOG_DIR, "the same path as logFile"
    conf = {m["mountPath"]: m for m in repair["volumeMounts"] if m["name"] == "cni-conf"}
    assert set(conf) == {"/host/etc/cni/net.d"} and conf["/host/etc/cni/net.d"]["readOnly"] is True
    command = repair["command"]
    assert command[command.index("--conf-dir") + 1] == "/host/etc/cni/net.d"
    assert command[command.index("--metrics-file") + 1].startswith("/metrics/")
    host_paths = {v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    expected = {OVERLAYS[overlay], STATE_DIR, "/run/netns", "/run/cni-hostdev", CONF_DIRS[overlay], METRICS_DIR}
    expected.add(LOG_DIR)
    assert host_paths == expected, "no other host path"


def test_the_plugins_host_paths_are_mounted(rendered: dict[str, list[Obj]]) -> None:
    """Paths the plugin keeps in its records must be visible to the repair container under the same name."""
    commands = (ROOT / "cni_hostdev" / "move.py").read_text()
    staging = re.search(r'^STAGING_DIR = "([^"]+)"', commands, re.M)
    assert staging, "cni_hostdev/move.py no longer defines STAGING_DIR: check the repair container's mounts"
    repair = container(pod_spec(rendered["default"]), "containers", "repair")
    mounts = [m["mountPath"] for m in repair["volumeMounts"]]
    assert any(staging.group(1).startswith(m + "/") for m in mounts), f"{staging.group(1)} is not mounted"


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_image_tag_is_the_plugin_version(rendered: dict[str, list[Obj]], overlay: str) -> None:
    spec = pod_spec(rendered[overlay])
    images = {c["image"] for field in ("initContainers", "containers") for c in spec[field]}
    assert images == {f"localhost/cni-hostdev:{plugin_version()}"}


def test_openshift_scc_grants_exactly_what_the_pod_uses(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["openshift"]
    scc = one(objects, "SecurityContextConstraints")
    spec = pod_spec(objects)
    assert spec["securityContext"]["seLinuxOptions"] == {"type": "spc_t"}
    assert scc["seLinuxContext"]["type"] == "RunAsAny" and scc["runAsUser"]["type"] == "RunAsAny"
    assert scc["allowPrivilegedContainer"] is False and scc["allowPrivilegeEscalation"] is False
    assert scc["allowHostNetwork"] is True and scc["allowHostDirVolumePlugin"] is True
    assert not (scc["allowHostPID"] or scc["allowHostIPC"] or scc["allowHostPorts"])
    added = {
        cap
        for c in spec["containers"] + spec["initContainers"]
        for cap in c["securityContext"]["capabilities"].get("add", [])
    }
    assert set(scc["allowedCapabilities"]) == added
    assert scc["defaultAddCapabilities"] == []
    used = {next(k for k in v if k != "name") for v in spec["volumes"]}
    assert set(scc["volumes"]) == used
    assert scc["readOnlyRootFilesystem"] is True
    assert scc["seccompProfiles"] == ["runtime/default"]
    role, binding = one(objects, "ClusterRole"), one(objects, "RoleBinding")
    assert role["rules"] == [
        {
            "apiGroups": ["security.openshift.io"],
            "resources": ["securitycontextconstraints"],
            "resourceNames": [scc["metadata"]["name"]],
            "verbs": ["use"],
        }
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": spec["serviceAccountName"], "namespace": "kube-system"}
    ]
    assert binding["metadata"]["namespace"] == "kube-system"


def _cli_help(*args: str) -> str:
    argv = [str(BINARY)] if BINARY.exists() else [sys.executable, "-m", "cni_hostdev"]
    out = subprocess.run([*argv, *args, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_cli_takes_the_flags_the_manifests_and_image_use(rendered: dict[str, list[Obj]]) -> None:
    spec = pod_spec(rendered["default"])
    for c in spec["initContainers"] + spec["containers"]:
        command = c["command"]
        usage = _cli_help(command[1])
        for flag in (arg for arg in command[2:] if arg.startswith("--")):
            assert flag in usage, f"host-device {command[1]} has no {flag}"
    entrypoint = re.search(r"^ENTRYPOINT (.*)$", (ROOT / "packaging" / "Containerfile").read_text(), re.M)
    assert entrypoint
    argv = json.loads(entrypoint.group(1))
    assert argv[:4] == ["/host-device", "install", "--bin-dir", IN_CONTAINER_BIN_DIR]
    assert argv[argv.index("--node-bin-dir") + 1] == OVERLAYS["default"]
    usage = _cli_help("install")
    assert all(flag in usage for flag in argv[2:] if flag.startswith("--"))


# --- the NetworkAttachmentDefinition examples ----------------------------------------------------------


def _nads(yaml: ModuleType) -> dict[str, Obj]:
    nads = [o for p in EXAMPLES for o in load_docs(yaml, p) if o["kind"] == "NetworkAttachmentDefinition"]
    return {o["metadata"]["name"]: o for o in nads}


def test_nad_examples_cover_name_pci_pool_and_resource(yaml: ModuleType) -> None:
    from cni_hostdev.config import DEFAULT_DATA_DIR, parse_netconf

    selectors: dict[str, str] = {}
    for name, nad in _nads(yaml).items():
        _, plugins = parse_cni_config(nad["spec"]["config"])
        for plugin in plugins:
            conf = dict(plugin)
            if plugin.get("capabilities", {}).get("deviceID"):
                # What Multus does for a NAD with a resourceName: the allocated device as runtimeConfig.
                assert nad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"]
                conf["runtimeConfig"] = {"deviceID": "0000:3b:02.1"}
                selectors[name] = "resource"
            elif "devices" in plugin:
                selectors[name] = "pool"
            elif "pciBusID" in plugin:
                selectors[name] = "pci"
            elif "device" in plugin:
                selectors[name] = "name"
            parsed = parse_netconf(conf, "ADD")  # the plugin's own validation, which touches no device
            assert parsed.type == "host-device" and (parsed.selectors.any() or parsed.pool)
            assert parsed.data_dir == DEFAULT_DATA_DIR == STATE_DIR, "the repair loop watches the default dataDir"
    assert sorted(selectors.values()) == ["name", "pci", "pool", "resource"]


def test_example_pod_uses_an_example_network(yaml: ModuleType) -> None:
    pods = [o for p in EXAMPLES for o in load_docs(yaml, p) if o["kind"] == "Pod"]
    nads = _nads(yaml)
    for pod in pods:
        network = pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"]
        nad = nads[network]
        resource = nad["metadata"].get("annotations", {}).get("k8s.v1.cni.cncf.io/resourceName")
        if resource:
            assert pod["spec"]["containers"][0]["resources"]["limits"][resource] == "1"


# --- the image, with podman ----------------------------------------------------------------------------


@pytest.mark.skipif(os.environ.get("CNI_HOSTDEV_SKIP_IMAGE") == "1", reason="CNI_HOSTDEV_SKIP_IMAGE=1")
def test_image_build_install_and_replace_with_podman() -> None:
    """packaging/image/prove.sh: build offline, install (both layouts), skip, refuse, replace a running binary."""
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    script = ROOT / "packaging" / "image" / "prove.sh"
    proc = subprocess.run(["bash", str(script), str(BINARY)], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert re.search(r"prove\.sh: \d+ checks passed", proc.stdout), proc.stdout
