"""One CNI call's inputs: the CNI_* environment, read by its command's rules, and the network config.

The rules themselves (which variables each command needs) are the command table's
(cni_hostdev/plugin/dispatch.py); this module applies them.
"""

from __future__ import annotations

import os

from cni_hostdev.config import NetConf, validate_ifname
from cni_hostdev.errors import INVALID_ENV, CniError
from cni_hostdev.identifiers import is_plain_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


# Plain classes, not dataclasses: see cni_hostdev/result.py.
class CniEnv:
    __slots__ = ("attachable", "command", "container_id", "ifname", "netns", "path")

    def __init__(
        self,
        command: str,
        container_id: str = "",
        netns: str = "",
        ifname: str = "",
        path: tuple[str, ...] = (),
        attachable: bool = True,
    ) -> None:
        self.command = command
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.path = path
        self.attachable = attachable  # False: an ifname no ADD would accept


class Call:
    """What a command handler gets: the CNI_* variables, the parsed config, and the environment
    to hand on to IPAM plugins (which read it too)."""

    __slots__ = ("conf", "env", "environ")

    def __init__(self, env: CniEnv, conf: NetConf, environ: Mapping[str, str]) -> None:
        self.env = env
        self.conf = conf
        self.environ = environ

    def ipam(self, command: str) -> dict[str, Any] | None:
        """Run `command` of the configured IPAM plugin for this call (cni_hostdev/ipam.py)."""
        from cni_hostdev import ipam

        return ipam.delegate(command, self.conf, self.environ, self.env.path)


def read_env(
    environ: Mapping[str, str] | os._Environ[str], command: str, needs: tuple[str, ...], forgiving: bool
) -> CniEnv:
    """The CNI_* variables of `command`, which `needs` those named; `forgiving` (DEL) accepts an
    ifname no ADD would have attached, as an attachment with nothing to undo."""
    path = _split_path(environ.get("CNI_PATH", ""))
    if "CNI_CONTAINERID" not in needs:
        return CniEnv(command=command, path=path)
    container_id = _needed(environ, "CNI_CONTAINERID")
    if not is_plain_name(container_id):
        raise CniError(INVALID_ENV, f"CNI_CONTAINERID {container_id!r} has characters outside [A-Za-z0-9_.-]")
    ifname = _needed(environ, "CNI_IFNAME")
    try:
        validate_ifname(ifname, "CNI_IFNAME")
    except CniError:
        # No ADD can have attached a name we refuse, so DEL has nothing to undo. Failing
        # it would only leave the runtime retrying and the pod stuck terminating.
        if not forgiving:
            raise
        return CniEnv(command=command, container_id=container_id, ifname=ifname, attachable=False)
    netns = _needed(environ, "CNI_NETNS") if "CNI_NETNS" in needs else environ.get("CNI_NETNS", "")
    if netns and not netns.startswith("/"):
        raise CniError(INVALID_ENV, f"CNI_NETNS {netns!r} is not an absolute path")
    _check_args(environ.get("CNI_ARGS", ""))  # nothing in it is ours to read, but it must be KEY=VALUE pairs
    return CniEnv(command=command, container_id=container_id, netns=netns, ifname=ifname, path=path)


def _needed(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise CniError(INVALID_ENV, f"{name} is missing")
    return value


def _split_path(value: str) -> tuple[str, ...]:
    return tuple(p for p in value.split(":") if p)


def _check_args(value: str) -> None:
    for pair in value.split(";"):
        key, sep, _ = pair.partition("=")
        if pair and (not sep or not key):
            raise CniError(INVALID_ENV, f"CNI_ARGS entry {pair!r} is not KEY=VALUE")
