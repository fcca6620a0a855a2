"""CHECK: the attachment prevResult reports is still there: recorded, in its pod, up, addressed."""

from __future__ import annotations

from cni_hostdev import logs, netns
from cni_hostdev.errors import CHECK_FAILED, INVALID_CONFIG, CniError
from cni_hostdev.plugin.call import Call
from cni_hostdev.result import Result
from cni_hostdev.state import StateStore

log = logs.get_logger(__name__)


def handle(call: Call) -> None:
    conf, env = call.conf, call.env
    prev = conf.prev_result
    if prev is None:
        raise CniError(INVALID_CONFIG, "config key prevResult is missing: CHECK needs the result of ADD")
    if conf.ipam is not None:
        call.ipam("CHECK")
    record = StateStore(conf.data_dir, conf.name).load(env.container_id, env.ifname)
    if record is None:
        raise CniError(CHECK_FAILED, f"no attachment recorded for container {env.container_id} interface {env.ifname}")
    logs.context(device=record.original_name or record.pci_address)
    reported = [(n, i) for n, i in enumerate(prev.interfaces) if i.name == env.ifname and i.sandbox in ("", env.netns)]
    if not reported:
        raise CniError(CHECK_FAILED, f"prevResult reports no interface {env.ifname} in netns {env.netns}")
    position, iface = reported[0]
    if record.kind == "userspace":
        log.info(
            "CHECK %s/%s: PCI %s is recorded; nothing to look at", env.container_id, env.ifname, record.pci_address
        )
        return
    with netns.pod(env.netns, required=True) as pod:
        assert pod is not None
        link = pod.rtnl.link(name=env.ifname)
        if link is None:
            raise CniError(CHECK_FAILED, f"interface {env.ifname} is missing from netns {env.netns}")
        if iface.mac and iface.mac.lower() != link.mac:
            raise CniError(CHECK_FAILED, f"interface {env.ifname} has MAC {link.mac}, prevResult says {iface.mac}")
        if not link.up:
            raise CniError(CHECK_FAILED, f"interface {env.ifname} in netns {env.netns} is down")
        ours = Result(
            ips=[ip for ip in prev.ips if ip.interface in (None, position)],
            routes=prev.routes if conf.ipam is not None else [],
        )
        from cni_hostdev import ipam

        ipam.verify(pod.rtnl, link, ours)
    log.info("CHECK %s/%s: %s is in netns %s, up, as reported", env.container_id, env.ifname, env.ifname, env.netns)
