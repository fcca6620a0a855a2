"""Network definitions as operators keep them: a netconf, a conflist, or NetworkAttachmentDefinitions
(one, a multi-document file, or a `List`, as `kubectl get -o yaml` prints them), in JSON or YAML,
one file or a CNI config dir; out of each, the host-device configs it holds.

The YAML parser loads here only: the node tools read YAML, a CNI call never does.
"""

from __future__ import annotations

import os
from typing import Any

from cni_hostdev.lean import json as lean_json

# What libcni reads from a config dir (JSON only: a file only YAML reads is one libcni cannot load).
CONFIG_EXTENSIONS = (".conf", ".conflist", ".json")
NAD_KIND = "NetworkAttachmentDefinition"
PLUGIN_TYPES = ("host-device",)  # the plugin's name in `type`; installed under another, say which


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


def read_file(path: str, types: tuple[str, ...] = PLUGIN_TYPES, *, yaml_too: bool = True) -> list[Definition]:
    """Every config of ours (`type` one of `types`) a file holds (none, for a file of other plugins'
    networks); `-` is stdin (`kubectl get net-attach-def -A -o yaml | ... doctor --config -`)."""
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
    for document in _documents(path, text, yaml_too):
        definitions += _from_object(path, document, types)
    return definitions


def read_dir(directory: str, types: tuple[str, ...] = PLUGIN_TYPES) -> tuple[list[Definition], list[str]]:
    """The configs of ours in a CNI config dir (files in libcni's order, read as libcni reads them),
    and a problem per file that could not be read. Raises OSError for a dir that cannot be."""
    definitions: list[Definition] = []
    problems: list[str] = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not name.endswith(CONFIG_EXTENSIONS) or not os.path.isfile(path):
            continue
        try:
            definitions += read_file(path, types, yaml_too=False)
        except ConfigError as err:
            problems.append(str(err))
    return definitions, problems


def _documents(path: str, text: bytes, yaml_too: bool) -> list[Any]:
    try:
        return [lean_json.loads(text)]
    except (ValueError, RecursionError) as err:
        if not yaml_too:
            raise ConfigError(f"{path} is not JSON, which libcni needs: {err}") from None
    import yaml  # JSON is the common case; YAML (a NAD from git or kubectl) loads the parser

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return [document for document in yaml.load_all(text, Loader=loader) if document is not None]
    except (yaml.YAMLError, RecursionError) as err:
        raise ConfigError(f"{path} is neither JSON nor YAML: {' '.join(str(err).split())}") from None


def _from_object(path: str, obj: Any, types: tuple[str, ...]) -> list[Definition]:
    if not isinstance(obj, dict):
        raise ConfigError(f"{path} holds no network config object")
    if obj.get("kind") == "List" or (isinstance(obj.get("items"), list) and "kind" in obj):
        items = obj.get("items") or []
        return [found for item in items if isinstance(item, dict) for found in _from_object(path, item, types)]
    if obj.get("kind") == NAD_KIND:
        return _from_nad(path, obj, types)
    return _plugins(obj, path, types)


def _from_nad(path: str, nad: dict[str, Any], types: tuple[str, ...]) -> list[Definition]:
    metadata: dict[str, Any] = nad["metadata"] if isinstance(nad.get("metadata"), dict) else {}
    spec: dict[str, Any] = nad["spec"] if isinstance(nad.get("spec"), dict) else {}
    where = f"{metadata.get('namespace') or 'default'}/{metadata.get('name') or '?'}"
    origin = f"{path} ({NAD_KIND} {where})"
    text = spec.get("config")
    if not text:
        return []  # its config lives on the nodes (Multus reads it from a file there)
    try:
        config = lean_json.loads(text) if isinstance(text, str) else None
    except ValueError as err:
        raise ConfigError(f"{origin}: spec.config is not JSON ({err})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{origin}: spec.config is not a JSON object")
    if not config.get("name") and metadata.get("name"):
        config["name"] = metadata["name"]  # what Multus does with a config that has none
    return _plugins(config, origin, types)


def _plugins(obj: dict[str, Any], origin: str, types: tuple[str, ...]) -> list[Definition]:
    """Our configs of a netconf or conflist; a conflist's name and version win over a plugin's, as
    libcni gives them."""
    if not isinstance(obj.get("plugins"), list):
        return [Definition(origin, obj)] if obj.get("type") in types else []
    inherited: dict[str, Any] = {key: obj[key] for key in ("cniVersion", "name") if key in obj}
    return [
        Definition(origin, {**plugin, **inherited})
        for plugin in obj["plugins"]
        if isinstance(plugin, dict) and plugin.get("type") in types
    ]
