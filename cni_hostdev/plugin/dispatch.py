"""The command table, and one CNI call from environment and stdin to its answer.

Each command's row says which CNI_* variables it needs, since which cniVersion it exists, and
which module handles it (imported only when called: a DEL loads nothing of ADD's). Every
failure leaves as a CNI error object printed in the config's version.
"""

from __future__ import annotations

import os
import sys

from cni_hostdev import diagnostics, logs, versions
from cni_hostdev.errors import INCOMPATIBLE_VERSION, INTERNAL, INVALID_CONFIG, INVALID_ENV, NETLINK_FAILURE, CniError

TYPE_CHECKING = False
if TYPE_CHECKING:  # VERSION must stay cheap: the call's model (and the config's) loads after it
    from collections.abc import Callable, Mapping
    from typing import Any

    from cni_hostdev.plugin.call import Call, CniEnv

    Handler = Callable[[Call], dict[str, Any] | None]

log = logs.get_logger("host-device")
ATTACHMENT = ("CNI_CONTAINERID", "CNI_IFNAME")


class Command:
    __slots__ = ("first_version", "forgiving", "module", "name", "needs")

    def __init__(self, name: str, module: str, needs: tuple[str, ...] = (), *, forgiving: bool = False) -> None:
        self.name = name
        self.module = module  # cni_hostdev.plugin.<module>.handle answers it
        self.needs = needs
        self.forgiving = forgiving  # DEL: an ifname no ADD would take is nothing to undo
        self.first_version = versions.FIRST_VERSION.get(name)

    def handler(self) -> Handler:
        name = f"cni_hostdev.plugin.{self.module}"
        __import__(name)  # importlib's import_module would load importlib for this one call
        handle: Handler = sys.modules[name].handle
        return handle


COMMANDS = {
    command.name: command
    for command in (
        Command("ADD", "add", (*ATTACHMENT, "CNI_NETNS")),
        Command("DEL", "delete", ATTACHMENT, forgiving=True),
        Command("CHECK", "check", (*ATTACHMENT, "CNI_NETNS")),
        Command("STATUS", "status"),
        Command("GC", "gc"),
        Command("VERSION", ""),
    )
}


def read_command_env(environ: Mapping[str, str] | os._Environ[str]) -> CniEnv:
    name = environ.get("CNI_COMMAND", "")
    command = COMMANDS.get(name)
    if command is None:
        raise CniError(INVALID_ENV, f"CNI_COMMAND {name!r} is not one of {', '.join(COMMANDS)}")
    from cni_hostdev.plugin.call import read_env

    return read_env(environ, name, command.needs, command.forgiving)


def _refuse_if_too_old(command: Command, cni_version: str) -> None:
    first = command.first_version
    if first is None:
        return
    if versions.compare(versions.supported(cni_version), first) < 0:
        later = "" if first == versions.LATEST else " or later"
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"{command.name} is not defined for cniVersion {cni_version} (needs {first}{later})",
        )


def apply_log_level(level: object) -> None:
    """Runtimes may show a plugin's stderr to users: quiet unless the config asks for more."""
    if isinstance(level, str) and level.lower() in logs.LEVELS:
        logs.set_level(logs.LEVELS[level.lower()])


def start_logging(environ: Mapping[str, str], conf: dict[str, Any]) -> None:
    """The config's log settings (its `logFile`, if any), and what each line of that file names."""
    if conf.get("logFile"):
        from cni_hostdev import logfile

        logfile.configure(conf)
    else:
        apply_log_level(conf.get("logLevel"))
    name = conf.get("name")
    logs.context(
        command=environ.get("CNI_COMMAND"),
        network=name if isinstance(name, str) else None,
        container=environ.get("CNI_CONTAINERID"),
        ifname=environ.get("CNI_IFNAME"),
    )


def answer_version() -> tuple[dict[str, Any], int]:
    """VERSION, as skel answers it: the same whatever stdin holds. The launcher in front of the
    frozen program answers it before Python starts (packaging/launcher.c), the same bytes."""
    return versions.answer(), 0


def run(environ: dict[str, str] | os._Environ[str], stdin: bytes) -> tuple[dict[str, Any] | None, int]:
    """Run one CNI command; return (JSON to print, exit status). Never raises."""
    if environ.get("CNI_COMMAND") == "VERSION":
        diagnostics.mark("ready")
        return answer_version()
    from cni_hostdev import config

    # Errors answer in the config's version, even those found before the config is parsed.
    raw, asked, undecodable = config.decode_stdin(stdin)
    cni_version = versions.known_or_latest(asked)
    try:
        start_logging(environ, raw)
    except Exception as err:  # logging must never cost the call
        logs.write_stderr(f"host-device: WARNING cannot set up logging: {err}\n")
    try:
        env = read_command_env(environ)
        if undecodable is not None:
            raise undecodable
        cni_version = config.config_version(raw)
        command = COMMANDS[env.command]
        _refuse_if_too_old(command, cni_version)
        conf = config.parse_netconf(raw, env.command)
        if conf.type and conf.type != "host-device":
            log.debug("configured type is %s; running as host-device", conf.type)
        handle = command.handler()
        from cni_hostdev.plugin.call import Call

        diagnostics.mark("ready")
        return handle(Call(env, conf, environ)), 0
    except CniError as err:
        err.naming_node()
        # On stderr only what a user can act on (runtimes show it beside the error object); the
        # log file keeps every refusal.
        on_stderr = err.code == INVALID_CONFIG or err.code >= 100
        logs.emit(
            logs.ERROR,
            "%s refused (code %d): %s",
            (environ.get("CNI_COMMAND"), err.code, err.msg),
            file_only=not on_stderr,
        )
        return err.to_json(versions.known_or_latest(cni_version)), 1
    except Exception as err:  # the one place that turns surprises into CNI errors
        return _unexpected(err, versions.known_or_latest(cni_version)), 1


def _unexpected(err: Exception, cni_version: str) -> dict[str, Any]:
    import traceback

    from cni_hostdev.netlink import NetlinkError

    if isinstance(err, NetlinkError):
        log.error("netlink request failed: %s\n%s", err, traceback.format_exc())
        return CniError(NETLINK_FAILURE, f"a netlink request failed: {err.strerror}").to_json(cni_version)
    log.error("unexpected failure: %s\n%s", err, traceback.format_exc())
    return CniError(INTERNAL, f"internal error: {type(err).__name__}: {err}").to_json(cni_version)
