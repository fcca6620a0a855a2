"""Entry point: a CNI plugin when CNI_COMMAND is set, else a small CLI (probe, --version)."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from typing import Any, NoReturn

from cni_hostdev._version import __version__
from cni_hostdev.errors import INTERNAL, INVALID_CONFIG, CniError
from cni_hostdev.result import LATEST, SUPPORTED_VERSIONS

log = logging.getLogger("host-device")


def _emit(obj: dict[str, Any] | None, status: int) -> NoReturn:
    if obj is not None:
        sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    # Interpreter teardown after the netlink imports costs tens of ms and does
    # nothing we need: everything is written and every fd is CLOEXEC.
    os._exit(status)


_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _apply_log_level(level: object) -> None:
    """Runtimes may show a plugin's stderr to users: quiet unless the config asks for more."""
    if isinstance(level, str) and level.lower() in _LOG_LEVELS:
        logging.getLogger().setLevel(_LOG_LEVELS[level.lower()])


def run_plugin(environ: dict[str, str] | os._Environ[str], stdin: bytes) -> tuple[dict[str, Any] | None, int]:
    """Run one CNI command; return (JSON to print, exit status). Never raises."""
    from cni_hostdev import config

    cni_version = LATEST
    try:
        env = config.read_env(environ)
        raw = config.decode_stdin(stdin) if stdin.strip() or env.command != "VERSION" else {}
        cni_version = config.config_version(raw)
        _apply_log_level(raw.get("logLevel"))
        if cni_version not in SUPPORTED_VERSIONS:
            cni_version = LATEST if env.command == "VERSION" else cni_version
        if env.command == "VERSION":
            log.debug("host-device %s VERSION", __version__)
            return {"cniVersion": cni_version, "supportedVersions": list(SUPPORTED_VERSIONS)}, 0
        conf = config.parse_netconf(raw, env.command)
        if conf.type and conf.type != "host-device":
            log.debug("configured type is %s; running as host-device", conf.type)
        from cni_hostdev import commands

        if env.command == "ADD":
            return commands.cmd_add(env, conf, environ), 0
        handler = {
            "DEL": commands.cmd_del,
            "CHECK": commands.cmd_check,
            "STATUS": commands.cmd_status,
            "GC": commands.cmd_gc,
        }[env.command]
        handler(env, conf, environ)
        return None, 0
    except CniError as err:
        if err.code == INVALID_CONFIG or err.code >= 100:
            log.error("%s", err.msg)
        return err.to_json(cni_version if cni_version in SUPPORTED_VERSIONS else LATEST), 1
    except Exception as err:
        log.error("unexpected failure: %s\n%s", err, traceback.format_exc())
        return CniError(INTERNAL, f"internal error: {type(err).__name__}: {err}").to_json(
            cni_version if cni_version in SUPPORTED_VERSIONS else LATEST
        ), 1


def _probe_command(args: list[str]) -> int:
    from dataclasses import asdict

    from cni_hostdev.probe import cached_probe

    result = cached_probe(refresh="--fresh" in args)
    print(json.dumps(asdict(result), indent=2))
    return 0


def _inventory_command(args: list[str]) -> int:
    from cni_hostdev.config import DEFAULT_DATA_DIR
    from cni_hostdev.inventory import collect, render

    data_dir = DEFAULT_DATA_DIR
    if "--data-dir" in args:
        position = args.index("--data-dir")
        if position + 1 >= len(args):
            sys.stderr.write("inventory: --data-dir needs a directory\n")
            return 2
        data_dir = args[position + 1]
    print(render(collect(data_dir), as_json="--json" in args))
    return 0


USAGE = """usage: host-device [--version | probe [--fresh] | inventory [--json] [--data-dir DIR]]

Run by a container runtime with CNI_COMMAND set, host-device is a CNI plugin.
  probe     print what this kernel can do when moving devices (cached per boot)
  inventory list the host's devices: free, claimed by a pod, or in use by the host
  --version print the plugin version
"""


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="host-device: %(levelname)s %(message)s", stream=sys.stderr)
    args = sys.argv[1:]
    # A runtime always sets CNI_COMMAND; even an empty one means "answer as a plugin" (with code 4).
    if "CNI_COMMAND" in os.environ or (not args and not sys.stdin.isatty()):
        try:
            stdin = sys.stdin.buffer.read()
        except OSError:
            stdin = b""
        obj, status = run_plugin(os.environ, stdin)
        _emit(obj, status)
    if args in (["--version"], ["version"]):
        print(f"host-device {__version__}")
        sys.exit(0)
    if args[:1] == ["probe"]:
        sys.exit(_probe_command(args[1:]))
    if args[:1] == ["inventory"]:
        sys.exit(_inventory_command(args[1:]))
    sys.stderr.write(USAGE)
    sys.exit(2)
