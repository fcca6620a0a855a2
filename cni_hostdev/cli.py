"""Entry point: a CNI plugin when CNI_COMMAND is set, else a small CLI (probe, --version)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

from cni_hostdev import logs, phases
from cni_hostdev._version import __version__
from cni_hostdev.errors import INTERNAL, INVALID_CONFIG, NETLINK_FAILURE, CniError
from cni_hostdev.versions import LATEST, SUPPORTED_VERSIONS

log = logs.get_logger("host-device")


def write_outcome(obj: dict[str, Any] | None) -> None:
    if obj is not None:
        sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()


def emit(obj: dict[str, Any] | None, status: int) -> NoReturn:
    phases.mark("done")
    write_outcome(obj)
    phases.flush(os.environ.get("CNI_COMMAND", ""))
    # Interpreter teardown after the netlink imports costs tens of ms and does
    # nothing we need: everything is written and every fd is CLOEXEC.
    os._exit(status)


def _apply_log_level(level: object) -> None:
    """Runtimes may show a plugin's stderr to users: quiet unless the config asks for more."""
    if isinstance(level, str) and level.lower() in logs.LEVELS:
        logs.set_level(logs.LEVELS[level.lower()])


def _version_answer(stdin: bytes) -> tuple[dict[str, Any], int]:
    """VERSION is exec'd often and must stay cheap: no config model, no netlink."""
    conf: Any = {}
    try:
        conf = json.loads(stdin) if stdin.strip() else {}
        requested = conf.get("cniVersion")
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        requested = None  # VERSION answers whatever it is given
    if isinstance(conf, dict):
        _apply_log_level(conf.get("logLevel"))
    version = requested if requested in SUPPORTED_VERSIONS else LATEST
    log.info("host-device %s answers VERSION for cniVersion %s", __version__, requested)
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}, 0


def _peek_version(stdin: bytes) -> str:
    try:
        version = json.loads(stdin).get("cniVersion")
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        return LATEST
    return version if version in SUPPORTED_VERSIONS else LATEST


def run_plugin(environ: dict[str, str] | os._Environ[str], stdin: bytes) -> tuple[dict[str, Any] | None, int]:
    """Run one CNI command; return (JSON to print, exit status). Never raises."""
    if environ.get("CNI_COMMAND") == "VERSION":
        phases.mark("ready")
        return _version_answer(stdin)
    from cni_hostdev import config

    # Errors answer in the config's version, even those found before the config is parsed.
    cni_version = _peek_version(stdin)
    try:
        env = config.read_env(environ)
        raw = config.decode_stdin(stdin)
        cni_version = config.config_version(raw)
        _apply_log_level(raw.get("logLevel"))
        conf = config.parse_netconf(raw, env.command)
        if conf.type and conf.type != "host-device":
            log.debug("configured type is %s; running as host-device", conf.type)
        from cni_hostdev import commands

        phases.mark("ready")
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
        err.naming_node()
        if err.code == INVALID_CONFIG or err.code >= 100:
            log.error("%s", err.msg)
        return err.to_json(cni_version if cni_version in SUPPORTED_VERSIONS else LATEST), 1
    except Exception as err:  # the one place that turns surprises into CNI errors
        import traceback

        from cni_hostdev.netlink import NetlinkError

        if isinstance(err, NetlinkError):
            log.error("netlink request failed: %s\n%s", err, traceback.format_exc())
            return CniError(NETLINK_FAILURE, f"a netlink request failed: {err.strerror}").to_json(cni_version), 1
        log.error("unexpected failure: %s\n%s", err, traceback.format_exc())
        return CniError(INTERNAL, f"internal error: {type(err).__name__}: {err}").to_json(
            cni_version if cni_version in SUPPORTED_VERSIONS else LATEST
        ), 1


def _cli(args: list[str]) -> int:
    import argparse

    from cni_hostdev.config import DEFAULT_DATA_DIR

    parser = argparse.ArgumentParser(
        prog="host-device",
        description="A CNI plugin (run by a container runtime with CNI_COMMAND set), and its node tools.",
    )
    parser.add_argument("--version", action="version", version=f"host-device {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe", help="what this kernel can do when moving devices (cached per boot)")
    probe.add_argument("--fresh", action="store_true", help="probe again instead of using this boot's cache")
    inventory = sub.add_parser("inventory", help="the host's devices: free, claimed by a pod, or the host's own")
    inventory.add_argument("--json", action="store_true")
    inventory.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    inventory.add_argument(
        "--config", metavar="FILE", help="only the devices this network config (conflist, NAD as JSON) names here"
    )
    install = sub.add_parser("install", help="install this binary into a CNI bin dir, atomically")
    install.add_argument("--bin-dir", default="/opt/cni/bin")
    install.add_argument("--name", default="host-device")
    install.add_argument("--sha256", help="refuse a payload whose sha256 differs")
    install.add_argument(
        "--layout",
        choices=("unpacked", "file"),
        default="unpacked",
        help="unpacked: a self-contained tree beside the entry, no extraction per exec (default); "
        "file: copy the single static file",
    )
    install.add_argument(
        "--node-bin-dir", help="the bin dir's path on the node, when --bin-dir is where a container mounts it"
    )
    repair = sub.add_parser("repair", help="give back devices of pods that died without DEL, in a loop")
    repair.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    repair.add_argument("--interval", type=float, default=30.0, help="seconds between passes")
    repair.add_argument("--once", action="store_true", help="one pass, then exit (non-zero if any failed)")
    opts = parser.parse_args(args)

    if opts.command == "probe":
        from cni_hostdev.probe import cached_probe

        print(json.dumps(cached_probe(refresh=opts.fresh).to_json(), indent=2))
        return 0
    if opts.command == "inventory":
        from cni_hostdev.inventory import ConfigError, collect, collect_config, render

        try:
            entries = collect_config(opts.config) if opts.config else collect(opts.data_dir)
        except ConfigError as err:
            sys.stderr.write(f"host-device inventory: {err}\n")
            return 1
        print(render(entries, as_json=opts.json))
        return 0
    if opts.command == "install":
        from cni_hostdev import install as installer

        try:
            source = installer.running_binary()
            if opts.sha256 and installer.sha256_of(source) != opts.sha256.lower():
                raise installer.InstallError(f"payload {source} does not have sha256 {opts.sha256}")
            target = os.path.join(opts.bin_dir, opts.name)
            node_bin_dir = opts.node_bin_dir or opts.bin_dir
            if opts.layout == "file":
                outcome = installer.install(source, opts.bin_dir, opts.name)
                print(f"{outcome} {target} (sha256 {installer.sha256_of(target)})")
            else:
                outcome, launcher = installer.install_unpacked(source, opts.bin_dir, node_bin_dir, opts.name)
                print(f"{outcome} {target} -> {launcher}")
            if os.path.realpath(node_bin_dir) == os.path.realpath(opts.bin_dir):
                print(installer.installed_version(target))
            else:
                print(f"not running {target} here: its loader path is valid on the node ({node_bin_dir})")
        except installer.InstallError as err:
            sys.stderr.write(f"host-device install: {err}\n")
            return 1
        return 0
    from cni_hostdev.repair import repair_loop

    logs.set_level(logs.INFO)
    return repair_loop(opts.data_dir, opts.interval, opts.once)


def main(started: float | None = None) -> None:
    """`started`: when the entry script began (time.time()), for the phase marks."""
    phases.mark("start", started)
    args = sys.argv[1:]
    # A runtime always sets CNI_COMMAND; even an empty one means "answer as a plugin" (with code 4).
    if "CNI_COMMAND" in os.environ or (not args and not sys.stdin.isatty()):
        try:
            stdin = sys.stdin.buffer.read()
        except OSError:
            stdin = b""
        obj, status = run_plugin(os.environ, stdin)
        emit(obj, status)
    sys.exit(_cli(args))
