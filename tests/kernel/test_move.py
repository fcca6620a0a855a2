"""The move strategies on their own (cni_hostdev/move.py), driven in-process on real veths:
into the pod in one message or through a private netns, found again by proof, sent home intact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cni_hostdev import identity, netns
from cni_hostdev.errors import NAME_CONFLICT, CniError
from cni_hostdev.move import move_in, send_home
from cni_hostdev.netns import Namespace
from cni_hostdev.state import Record
from tests.conftest import STRATEGIES, Sandbox, ip, link_json, netns_path

if TYPE_CHECKING:
    from cni_hostdev.state import Strategy


@pytest.fixture
def host() -> Iterator[Namespace]:
    with netns.host() as space:
        yield space


def opened(name: str) -> Namespace:
    space = netns.open_pod(netns_path(name), required=True)
    assert space is not None
    return space


def record_of(host: Namespace, device: str, strategy: Strategy, staging: str | None) -> Record:
    link = host.rtnl.link(name=device)
    assert link is not None
    return Record.taking(
        link, None, network="tnet", container_id="c1", ifname="net1", netns="", strategy=strategy, staging=staging
    )


def pod_with_its_own_net1(sandbox: Sandbox) -> tuple[str, Namespace]:
    name = sandbox.pod()
    ip("-n", name, "link", "add", "net1", "type", "veth", "peer", "name", "net1p")
    return name, opened(name)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_into_the_pod_and_home_again(sandbox: Sandbox, host: Namespace, tmp_path: Path, strategy: Strategy) -> None:
    device, _ = sandbox.veth()
    ip("link", "set", device, "mtu", "1400")
    pod = opened(sandbox.pod())
    try:
        staging = str(tmp_path / "staging") if strategy == "rename-then-move" else None
        record = record_of(host, device, strategy, staging)
        link = host.rtnl.link(name=device)
        assert link is not None
        moved = move_in(host, pod, link, record)
        assert (moved.name, moved.alias, moved.up) == ("net1", device, True)
        assert host.rtnl.link(name=device) is None
        assert staging is None or not Path(staging).exists(), "the staging netns is gone once empty"

        record.ifindex = moved.index
        pod.rtnl.set_link(moved.index, mtu=1300)
        found = identity.find(record, pod.rtnl.links(), identity.POD)
        assert found is not None and found.index == moved.index
        send_home(pod.rtnl, found, host, record)
        home = link_json(device)
        assert home is not None
        assert (home["mtu"], "UP" in home["flags"], home.get("ifalias")) == (1400, True, None)
    finally:
        pod.close()


def test_a_device_is_never_found_by_its_name_alone(sandbox: Sandbox, host: Namespace) -> None:
    """A pod may name any device net1: the one we moved is known by ifindex with MAC or marker."""
    device, _ = sandbox.veth()
    name, pod = pod_with_its_own_net1(sandbox)
    try:
        record = record_of(host, device, "atomic", None)
        record.ifindex = (link_json("net1", name) or {})["ifindex"]
        assert identity.find(record, pod.rtnl.links(), identity.POD) is None, (
            "same name and ifindex, another MAC, no marker"
        )
    finally:
        pod.close()


def test_a_name_the_pod_has_is_refused_before_anything_moves(sandbox: Sandbox, host: Namespace) -> None:
    device, _ = sandbox.veth()
    _, pod = pod_with_its_own_net1(sandbox)
    try:
        link = host.rtnl.link(name=device)
        assert link is not None
        with pytest.raises(CniError) as err:
            move_in(host, pod, link, record_of(host, device, "atomic", None))
        assert err.value.code == NAME_CONFLICT
        assert link_json(device) is not None
    finally:
        pod.close()
