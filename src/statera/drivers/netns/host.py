"""The host side of namespace amphorae: the project's bridges, each with the host's address,
and an nftables table of our own that keeps tenant traffic on its bridge.

Before giving a bridge an address, the host's routes are checked: a CIDR that overlaps any
network the host already reaches (other than through our own bridges) is refused, because
adding it would steal that traffic from the host's real interfaces.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from statera.domain.errors import ConfigError
from statera.drivers.netns.ip import Ip, IpError, ours_link

LOG = logging.getLogger(__name__)
NFT_TABLE = "statera"


@dataclass(frozen=True)
class BridgeSpec:
    name: str
    cidr: str           # the network, e.g. 10.210.0.0/24
    host_address: str   # the host's address on it, e.g. 10.210.0.1
    mtu: int = 1500


def foreign_networks(ip: Ip) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Networks the host reaches through links that are not ours (default routes excluded:
    they overlap everything by definition)."""
    nets = []
    for table in ("main", "local"):
        for route in ip.json("route", "show", "table", table):
            dst, dev = route.get("dst"), route.get("dev", "")
            if not dst or dst == "default" or ours_link(dev):
                continue
            try:
                nets.append(ipaddress.ip_network(dst, strict=False))
            except ValueError:
                continue
    for link in ip.json("addr", "show"):
        if ours_link(link.get("ifname", "")):
            continue
        for info in link.get("addr_info", []):
            try:
                nets.append(ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}",
                                                 strict=False))
            except (KeyError, ValueError):
                continue
    return nets


def check_no_overlap(ip: Ip, spec: BridgeSpec) -> None:
    wanted = ipaddress.ip_network(spec.cidr)
    for net in foreign_networks(ip):
        if net.version == wanted.version and net.overlaps(wanted) and net.prefixlen > 0:
            raise ConfigError(
                f"bridge {spec.name}: {spec.cidr} overlaps {net}, which this host already "
                "uses; choose another CIDR for it")


def bridge_mac(name: str) -> str:
    """The MAC address a bridge of ours is created with: stable for its name, locally
    administered, unicast (amphora interfaces use fa:..., never 02:...)."""
    digest = hashlib.sha256(name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


# /sys/class/net/<dev>/addr_assign_type: 3 (NET_ADDR_SET) once an address was set explicitly.
_ADDR_SET = "3"
_NO_MAC = "00:00:00:00:00:00"


def pin_bridge_address(ip: Ip, name: str) -> None:
    """Give the bridge an address of its own if it has none yet. A bridge without one takes
    the lowest MAC among its ports and moves whenever a lower one joins or the lowest leaves:
    every amphora plugged in could move the host's address on the management bridge to a new
    MAC, and the amphorae that still had the old one cached sent their answers to it, where
    the host drops them, until their ARP entries expired (about a minute of silence). A
    bridge made by an older release keeps the address it has (pinning it changes nothing on
    the wire), unless it lost it with its last port."""
    try:
        assigned = Path(f"/sys/class/net/{name}/addr_assign_type").read_text().strip()
    except OSError:
        assigned = ""
    if assigned == _ADDR_SET:
        return
    links = ip.json("link", "show", "dev", name)
    current = str(links[0].get("address", "")) if links else ""
    ip("link", "set", name, "address", current if current not in ("", _NO_MAC)
       else bridge_mac(name))


def ensure_bridge(ip: Ip, spec: BridgeSpec) -> None:
    """Create the bridge (idempotent), with a MAC address that never changes, and give the
    host its address on it."""
    if not ours_link(spec.name):
        raise ConfigError(f"bridge name {spec.name!r} must start with st-")
    prefix = ipaddress.ip_network(spec.cidr).prefixlen
    if not ip.link_exists(spec.name):
        check_no_overlap(ip, spec)
        ip("link", "add", spec.name, "address", bridge_mac(spec.name), "type", "bridge")
        LOG.info("created bridge %s for %s", spec.name, spec.cidr)
    else:
        pin_bridge_address(ip, spec.name)
    ip("link", "set", spec.name, "mtu", str(spec.mtu), "up")
    have = {f"{a['local']}/{a['prefixlen']}"
            for link in ip.json("addr", "show", "dev", spec.name)
            for a in link.get("addr_info", [])}
    want = f"{spec.host_address}/{prefix}"
    if want not in have:
        ip("addr", "replace", want, "dev", spec.name)


def remove_bridge(ip: Ip, name: str) -> None:
    if ours_link(name) and ip.link_exists(name):
        ip("link", "del", name)


def isolation_rules(bridges: list[str], mgmt_bridge: str, protected_ports: list[int],
                    table: str = NFT_TABLE) -> str:
    """An nftables ruleset (our own table only) that forwards nothing into or out of our
    bridges, and lets tenant bridges open nothing on the host (SEC-7).

    The host reaches members and VIPs as a client: only their answers (and ICMP, which
    carries IPv6 neighbour discovery and errors) come back from tenant bridges. Every new
    connection or datagram from a tenant bridge to the host is dropped, whatever the address
    (the host's own on that bridge, on the management bridge, or any other) and whatever
    listens there: the API, the health manager, anything bound to all addresses. Forwarding
    being off, a tenant namespace reaches neither the management network (agents) nor
    another tenant bridge (other load balancers' VIPs). ``protected_ports`` (the control
    plane's) are named for the record: the rule covers every port."""
    tenant = [b for b in bridges if b != mgmt_bridge]
    all_set = ", ".join(f'"{b}"' for b in [mgmt_bridge, *tenant])
    # With br_netfilter loaded (Docker loads it), frames switched between two ports of one
    # bridge pass this hook too, as iifname = oifname = the bridge: those stay allowed.
    same_bridge = [f'    iifname "{b}" oifname "{b}" accept' for b in [mgmt_bridge, *tenant]]
    lines = [
        f"table inet {table} {{",
        "  chain forward {",
        "    type filter hook forward priority -10; policy accept;",
        *same_bridge,
        f"    iifname {{ {all_set} }} drop",
        f"    oifname {{ {all_set} }} drop",
        "  }",
    ]
    if tenant:
        tenant_set = ", ".join(f'"{b}"' for b in tenant)
        ports = ", ".join(str(p) for p in sorted(set(protected_ports))) or "none"
        lines += [
            "  chain input {",
            "    type filter hook input priority -10; policy accept;",
            f"    iifname {{ {tenant_set} }} ct state established,related accept",
            f"    iifname {{ {tenant_set} }} meta l4proto {{ icmp, ipv6-icmp }} accept",
            f'    iifname {{ {tenant_set} }} drop comment "control plane: {ports}; and all else"',
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def apply_isolation(ruleset: str, table: str = NFT_TABLE) -> None:
    """Replace our nftables table (and only ours) with ``ruleset``."""
    if not table.startswith("statera"):
        raise ConfigError(f"nftables table {table!r} is not Statera's")
    nft = shutil.which("nft")
    if nft is None:
        raise ConfigError("nft (package nftables) is required for namespace amphorae")
    subprocess.run([nft, "delete", "table", "inet", table], capture_output=True)
    proc = subprocess.run([nft, "-f", "-"], input=ruleset, capture_output=True, text=True)
    if proc.returncode != 0:
        raise IpError(["nft", "-f", "-"], proc.returncode, proc.stderr)


def remove_isolation(table: str = NFT_TABLE) -> None:
    nft = shutil.which("nft")
    if nft and table.startswith("statera"):
        subprocess.run([nft, "delete", "table", "inet", table], capture_output=True)
