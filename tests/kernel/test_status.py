"""STATUS on real namespaces: whether an ADD could be served."""

from __future__ import annotations

from tests.conftest import Plugin, Sandbox, conf_for


def test_status_reports_missing_device(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    assert source_plugin.run("STATUS", conf_for(source_plugin, device=dev)).status == 0
    missing = source_plugin.run("STATUS", conf_for(source_plugin, device=sandbox.name("zz")))
    assert missing.code == 50 and missing.out is not None and sandbox.name("zz") in missing.out["msg"]
