"""The host's nftables ruleset for namespace amphorae (SEC-7): what it says, and that nft
accepts it (``nft -c``: checked, never loaded). test_isolation.py in tests/e2e probes it on a
real testbed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from statera.drivers.netns.host import isolation_rules

RULES = isolation_rules(["st-mgmt", "st-a", "st-b"], "st-mgmt", [9876, 9443, 5555],
                        table="statera_check")


def chain(name: str) -> list[str]:
    body = RULES.split(f"chain {name} {{\n")[1].split("  }")[0]
    return [line.strip() for line in body.splitlines()]


def test_nft_accepts_the_ruleset() -> None:
    nft = shutil.which("nft")
    if nft is None:
        pytest.skip("nft is not installed")
    done = subprocess.run([nft, "-c", "-f", "-"], input=RULES, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + RULES


def test_tenant_bridges_open_nothing_on_the_host() -> None:
    lines = chain("input")
    tenants = '{ "st-a", "st-b" }'
    assert lines[1:] == [
        f"iifname {tenants} ct state established,related accept",
        f"iifname {tenants} meta l4proto {{ icmp, ipv6-icmp }} accept",
        f'iifname {tenants} drop comment "control plane: 5555, 9443, 9876; and all else"',
    ]
    assert not any("st-mgmt" in line for line in lines)  # heartbeats come in over it


def test_nothing_is_forwarded_between_bridges() -> None:
    lines = chain("forward")
    for bridge in ("st-mgmt", "st-a", "st-b"):
        assert f'iifname "{bridge}" oifname "{bridge}" accept' in lines
    everything = '{ "st-mgmt", "st-a", "st-b" }'
    assert lines[-2:] == [f"iifname {everything} drop", f"oifname {everything} drop"]


def test_without_tenant_bridges_there_is_no_input_chain() -> None:
    assert "chain input" not in isolation_rules(["st-mgmt"], "st-mgmt", [9443])
