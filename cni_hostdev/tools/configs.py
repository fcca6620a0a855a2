"""Network definitions as operators keep them: a netconf, a conflist, or NetworkAttachmentDefinitions
(one, a multi-document file, or a `List`, as `kubectl get -o yaml` prints them), in JSON or YAML,
one file or a CNI config dir; out of each, the host-device configs it holds.

The YAML parser loads here only: the node tools read YAML, a CNI call never does.
"""

from __future__ import annotations

import os
from typing import Any

from cni_hostdev import jsontext

# What libcni reads from a config dir.
CONFIG_EXTENSIONS = (".conf", ".conflist", ".json")
NAD_KIND = "NetworkAttachmentDefinition"


class ConfigError(Exception):
    """A file that holds no network definition we can read."""


class Definition:
    """One host-device config, and where it came from (a file, and the NAD in it)."""

    __slots__ = ("config", "origin")

    def __init__(self, origin: str, config: dict[str, Any]) -> None:
        self.origin = origin
        self.config = config

    @property
    def network(self) -> str:
        name = self.config.get("name")
        return name if isinstance(name, str) and name else "(unnamed)"


def read_file(path: str) -> list[Definition]:
    """Every host-device config of a file (none, for a file of other plugins' networks); `-` is
    stdin (`kubectl get net-attach-def -A -o yaml | ... doctor --config -`)."""
    try:
        if path == "-":
            import sys

            text = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                text = f.read()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    definitions: list[Definition] = []
    for document in _documents(path, text):
        definitions += _from_object(path, document)
    return definitions


def read_dir(directory: str) -> tuple[list[Definition], list[str]]:
    """The host-device configs of a CNI config dir (files in libcni's order), and a problem per file
    that could not be read."""
    definitions: list[Definition] = []
    problems: list[str] = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not name.endswith(CONFIG_EXTENSIONS) or not os.path.isfile(path):
            continue
        try:
            definitions += read_file(path)
        except ConfigError as err:
            problems.append(str(err))
    return definitions, problems


def _documents(path: str, text: bytes) -> list[Any]:
    try:
        return [jsontext.loads(text)]
    except (ValueError, RecursionError):
        pass
    import yaml  # JSON is the common case; YAML (a NAD from git or kubectl) loads the parser

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return [document for document in yaml.load_all(text, Loader=loader) if document is not None]
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is neither JSON nor YAML: {' '.join(str(err).split())}") from None


def _from_object(path: str, obj: Any) -> list[Definition]:
    if not isinstance(obj, dict):
        raise ConfigError(f"{path} holds no network config object")
    if obj.get("kind") == "List" or (isinstance(obj.get("items"), list) and "kind" in obj):
        return [definition for item in obj.get("items") or [] for definition in _from_object(path, item)]
    if obj.get("kind") == NAD_KIND:
        return _from_nad(path, obj)
    return _plugins(path, obj, path)


def _from_nad(path: str, nad: dict[str, Any]) -> list[Definition]:
    metadata = nad.get("metadata") or {}
    where = f"{metadata.get('namespace') or 'default'}/{metadata.get('name') or '?'}"
    origin = f"{path} ({NAD_KIND} {where})"
    text = (nad.get("spec") or {}).get("config")
    if not text:
        return []  # its config lives on the nodes (Multus reads it from a file there)
    try:
        config = jsontext.loads(text) if isinstance(text, str) else None
    except ValueError as err:
        raise ConfigError(f"{origin}: spec.config is not JSON ({err})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{origin}: spec.config is not a JSON object")
    if not config.get("name") and metadata.get("name"):
        config["name"] = metadata["name"]  # what Multus does with a config that has none
    return _plugins(path, config, origin)


def _plugins(path: str, obj: dict[str, Any], origin: str) -> list[Definition]:
    """The host-device configs of a netconf or conflist, with the conflist's name and version."""
    if not isinstance(obj.get("plugins"), list):
        return [Definition(origin, obj)] if obj.get("type") == "host-device" else []
    inherited: dict[str, Any] = {key: obj[key] for key in ("cniVersion", "name") if key in obj}
    return [
        Definition(origin, {**inherited, **plugin})
        for plugin in obj["plugins"]
        if isinstance(plugin, dict) and plugin.get("type") == "host-device"
    ]
