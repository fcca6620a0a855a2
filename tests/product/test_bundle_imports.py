"""The frozen program loads the bundle's modules through packaging/bootstrap.py's BundleFinder: by
name, one file each, with none of the path finder's probes for extension modules and sources
(tests/unit/test_bootstrap.py tries the finder itself)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import Plugin, Sandbox, conf_for, pod_env


@pytest.mark.usefixtures("strace_installed")
def test_an_add_opens_each_module_by_name_and_probes_for_none(
    binary_plugin: Plugin, sandbox: Sandbox, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    strace = shutil.which("strace")
    assert strace is not None
    argv = [strace, "-f", "-qq", "-e", "trace=%file", "-o", str(trace), *binary_plugin.argv]
    traced = Plugin(argv, binary_plugin.data_dir)
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(traced, device=dev)
    assert traced.run("ADD", conf, **pod_env(pod)).status == 0
    assert binary_plugin.run("DEL", conf, **pod_env(pod)).status == 0
    calls = trace.read_text().splitlines()
    ours = [line for line in calls if re.search(r"/_internal/(cni_hostdev|pyroute2)/", line)]
    opened = {m.group(1) for line in ours if (m := re.search(r'open\w*\(.*/_internal/(\S+\.pyc)", O_RDONLY', line))}
    assert {"cni_hostdev/cli.pyc", "cni_hostdev/plugin/add.pyc", "pyroute2/netlink/__init__.pyc"} <= opened
    probes = [line for line in ours if re.search(r"\.(so|py)\"", line)]
    assert probes == [], "the path finder looked for extension modules or sources in the bundle"
