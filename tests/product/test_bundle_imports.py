"""The frozen program loads its modules from the bundle's .pyc files (the interpreter's path finder,
over the tree `noarchive` lays out), never from a source file or an archive."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import Plugin, Sandbox, conf_for, pod_env


@pytest.mark.usefixtures("strace_installed")
def test_an_add_opens_the_bundle_s_compiled_modules_and_no_source(
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
    sources = [line for line in ours if re.search(r'open\w*\(.*\.py", O_RDONLY', line) and "ENOENT" not in line]
    assert sources == [], "a source file was read"
