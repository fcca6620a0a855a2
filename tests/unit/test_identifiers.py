"""cni_hostdev/identifiers.py against the regular expressions it replaces: the same verdict on every
string, except that a trailing newline (which `$` lets through) is now refused."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cni_hostdev import identifiers

PATTERNS = {
    identifiers.is_mac: re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}"),
    identifiers.is_pci_address: re.compile(r"(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]"),
    identifiers.is_plain_name: re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*"),
    identifiers.is_aux_device: re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+\.[0-9]+"),
    identifiers.is_pci_name: re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]"),
}
# Strings near each shape, so that hypothesis finds the edges, not only noise.
near = st.text(alphabet="0123456789abcdefABCDEFgz:._-\n é٣", max_size=20)


@settings(max_examples=2000)
@given(near)
@example("0000:00:04.0")
@example("00:04.0")
@example("aa:bb:cc:dd:ee:ff")
@example("mlx5_core.sf.4")
@example("net-1.a_b")
@example("_net")
@example("0000:00:04.8")
@example("0000:00:04.0\n")
@example("00:04.٣")
def test_same_verdict_as_the_regular_expressions(text: str) -> None:
    for check, pattern in PATTERNS.items():
        assert check(text) == bool(pattern.fullmatch(text)), (check.__name__, text)


@given(near)
def test_plain_keeps_what_a_name_may_hold_and_replaces_the_rest(text: str) -> None:
    made = identifiers.plain(text)
    assert len(made) == len(text)
    assert made == re.sub(r"[^A-Za-z0-9_.\-]", "_", text)
