"""The node tools' command line: the same binary is a small CLI when no CNI_COMMAND is set.

`probe` (what this kernel can do), `inventory` (which devices are free, whose, the host's),
`doctor` (the node's networks checked against each other, the host and the state), `install`
(into a CNI bin dir, atomically) and `repair` (the DaemonSet's loop).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from cni_hostdev import __version__, logs


def main(args: list[str]) -> int:
    """Run one node tool; its exit status."""
    opts = _parser().parse_args(args)
    if opts.command == "probe":
        from cni_hostdev.probe import cached_probe

        print(json.dumps(cached_probe(refresh=opts.fresh).to_json(), indent=2))
        return 0
    if opts.command == "inventory":
        return _inventory(opts)
    if opts.command == "install":
        return _install(opts)
    if opts.command == "doctor":
        return _doctor(opts)
    from cni_hostdev.tools.repair import Watch, repair_loop

    logs.set_level(logs.INFO)
    watch = Watch(opts.conf_dir or [], opts.config or [], opts.metrics_file, _types_of(opts))
    return repair_loop(opts.data_dir, opts.interval, opts.once, watch)


def _parser() -> argparse.ArgumentParser:
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
        "--config",
        metavar="FILE",
        help="only the devices this network config names here (netconf, conflist or NADs; JSON or YAML)",
    )
    _types(inventory)
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
    doctor = sub.add_parser(
        "doctor", help="check this node's host-device networks against each other, the host and the state"
    )
    _watched(doctor, default_conf_dir=True)
    doctor.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    doctor.add_argument("--json", action="store_true", help="a machine-readable report")
    repair = sub.add_parser("repair", help="give back devices of pods that died without DEL, in a loop")
    repair.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    repair.add_argument("--interval", type=float, default=30.0, help="seconds between passes")
    repair.add_argument("--once", action="store_true", help="one pass, then exit (non-zero if any failed)")
    _watched(repair, default_conf_dir=False)
    repair.add_argument("--metrics-file", help="write metrics for node_exporter's textfile collector there")
    return parser


def _types_of(opts: argparse.Namespace) -> tuple[str, ...]:
    from cni_hostdev.tools.configs import PLUGIN_TYPES

    return tuple(opts.type or PLUGIN_TYPES)


def _types(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--type",
        action="append",
        metavar="NAME",
        help="the plugin's name in a config's `type`, when installed under another (default: host-device)",
    )


def _watched(parser: argparse.ArgumentParser, *, default_conf_dir: bool) -> None:
    default = " (default: /etc/cni/net.d, when no --config is given)" if default_conf_dir else ""
    parser.add_argument(
        "--conf-dir", action="append", metavar="DIR", help=f"a CNI config dir to read networks from{default}"
    )
    parser.add_argument(
        "--config", action="append", metavar="FILE", help="a netconf, conflist or NADs (JSON or YAML); repeatable"
    )
    _types(parser)


def _inventory(opts: argparse.Namespace) -> int:
    from cni_hostdev.tools.inventory import ConfigError, collect, collect_config, render

    try:
        types = _types_of(opts)
        entries = collect_config(opts.config, types) if opts.config else collect(opts.data_dir)
    except ConfigError as err:
        sys.stderr.write(f"host-device inventory: {err}\n")
        return 1
    print(render(entries, as_json=opts.json))
    return 0


def _doctor(opts: argparse.Namespace) -> int:
    """0 when nothing is wrong, 1 when something is (errors), 2 when the checks could not run."""
    from cni_hostdev.tools import doctor

    report = doctor.Report()
    types = _types_of(opts)
    try:
        found = doctor.definitions(opts.conf_dir or [], opts.config or [], report, types)
        doctor.examine(found, opts.data_dir, report)
    except doctor.CannotRun as err:
        sys.stderr.write(f"host-device doctor: {err}\n")
        return 2
    except Exception as err:  # a check that broke is not a clean node: exit 2, not 0 or 1
        sys.stderr.write(f"host-device doctor: a check failed: {type(err).__name__}: {err}\n")
        return 2
    print(json.dumps(report.to_json(), indent=2) if opts.json else report.render())
    return report.status()


def _install(opts: argparse.Namespace) -> int:
    from cni_hostdev.tools import install as installer

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
