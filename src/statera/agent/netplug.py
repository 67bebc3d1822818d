"""Interfaces of the tenant namespace (where HAProxy and the VIP live).

Every command here names that namespace (``ip -n <ns> …``): with no namespace configured
the agent refuses to plug anything rather than touch the host's own interfaces. Interfaces
are found by MAC, given their addresses, MTU and routes, and brought up; no interface is
moved or renamed. Each VIP gets a policy-routing table (100, 101, …) so replies leave by the
gateway of the subnet the VIP belongs to.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
from dataclasses import dataclass

from statera.agent import proc
from statera.agent.bodies import HostRoute, PlugNetwork, PlugVip
from statera.agent.errors import AgentError, BadRequest, Conflict, Forbidden, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LOG = logging.getLogger(__name__)
VIP_TABLE_BASE = 100
VIP_RULE_PRIORITY = 100


@dataclass(frozen=True)
class _Vip:
    address: str
    subnet: str
    gateway: str | None
    host_routes: tuple[HostRoute, ...]

    @property
    def interface_address(self) -> str:
        return f"{self.address}/{ipaddress.ip_network(self.subnet).prefixlen}"


def _address(ip: str, cidr: str) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    if ipaddress.ip_address(ip) not in net:
        raise BadRequest("Invalid request", f"{ip} is not in {cidr}")
    return f"{ip}/{net.prefixlen}"


def _family(address: str) -> str:
    return "-6" if ipaddress.ip_address(address.split("/")[0]).version == 6 else "-4"


class NetPlug:
    def __init__(self, namespace: str, topology: str = "SINGLE") -> None:
        self.namespace = namespace
        self.topology = topology

    # ---- ip wrappers ----------------------------------------------------------------------

    def _run(self, *args: str) -> str:
        if not self.namespace:
            raise Forbidden("Forbidden", "no haproxy_namespace is configured; the agent does "
                                         "not change interfaces outside it")
        result = proc.run(["ip", "-n", self.namespace, *args], timeout=15)
        if not result.ok:
            raise AgentError("Error configuring the interface", result.output.strip())
        return result.output

    def _json(self, *args: str) -> list[dict[str, Any]]:
        out = self._run("-j", *args).strip()
        return json.loads(out) if out else []

    # ---- reading --------------------------------------------------------------------------

    def link_by_mac(self, mac: str) -> dict[str, Any]:
        for link in self._json("link", "show"):
            if str(link.get("address", "")).lower() == mac.lower():
                return link
        raise NotFound("Not Found", f"no interface with MAC {mac}")

    def addresses(self, ifname: str) -> set[str]:
        """Global addresses of an interface, as address/prefix."""
        out: set[str] = set()
        for entry in self._json("addr", "show", "dev", ifname):
            for a in entry.get("addr_info", []):
                if a.get("scope") == "global":
                    out.add(f"{ipaddress.ip_address(a['local'])}/{a['prefixlen']}")
        return out

    def interface_of(self, ip: str) -> str:
        wanted = ipaddress.ip_address(ip)
        for entry in self._json("addr", "show"):
            for a in entry.get("addr_info", []):
                if ipaddress.ip_address(a.get("local", "0.0.0.0")) == wanted:
                    return str(entry["ifname"])
        raise NotFound("Not Found", f"no interface holds {ip}")

    def counters(self) -> dict[str, dict[str, int]]:
        if not self.namespace:
            return {}
        try:
            links = self._json("-s", "link", "show")
        except AgentError:
            return {}
        return {str(link["ifname"]): {
                    "network_tx": int(link.get("stats64", {}).get("tx", {}).get("bytes", 0)),
                    "network_rx": int(link.get("stats64", {}).get("rx", {}).get("bytes", 0))}
                for link in links if link.get("ifname") != "lo"}

    # ---- plugging -------------------------------------------------------------------------

    def plug_vip(self, vip: str, body: PlugVip) -> str:
        primary = _Vip(vip, body.subnet_cidr, body.gateway, tuple(body.host_routes))
        vips = [primary] + [_Vip(v.ip_address, v.subnet_cidr, v.gateway, tuple(v.host_routes))
                            for v in body.additional_vips]
        for v in vips:
            _address(v.address, v.subnet)
        # Under ACTIVE_STANDBY keepalived adds and removes the VIPs; the interface keeps
        # its own vrrp_ip.
        static_vips = self.topology != "ACTIVE_STANDBY" or body.vrrp_ip is None
        wanted = {v.interface_address for v in vips} if static_vips else set()
        if body.vrrp_ip:
            wanted.add(_address(body.vrrp_ip, body.subnet_cidr))
        allowed = wanted | {v.interface_address for v in vips}
        link = self.link_by_mac(body.mac_address)
        ifname = str(link["ifname"])
        self._configure(ifname, wanted, allowed, body.mtu)
        if body.gateway:
            self._run(_family(body.gateway), "route", "replace", "default", "via",
                      body.gateway, "dev", ifname)
        self._add_routes(ifname, body.host_routes)
        if static_vips:
            for index, v in enumerate(vips):
                self._vip_table(ifname, v, VIP_TABLE_BASE + index)
            self._announce(ifname, [v.address for v in vips])
        else:
            # keepalived adds the VIPs, and the routes that follow them, on the MASTER only;
            # haproxy binds them on both amphorae of the pair.
            self._allow_nonlocal_bind()
        LOG.info("VIP %s plugged on %s in namespace %s", vip, ifname, self.namespace)
        return ifname

    def _announce(self, ifname: str, addresses: list[str]) -> None:
        """Gratuitous ARP for IPv4 VIPs, so neighbours that cached the MAC of the amphora
        this one replaces (failover) switch at once instead of after their cache times out.
        (Under ACTIVE_STANDBY keepalived sends its own.)"""
        if not self.namespace:
            return
        arping = shutil.which("arping") or "/usr/bin/arping"
        if not os.path.exists(arping):
            LOG.warning("arping is not installed (apt-get install iputils-arping): neighbours "
                        "learn a moved VIP only when their ARP cache expires")
            return
        for address in addresses:
            if _family(address) == "-4":
                proc.fire_and_forget([*proc.netns_prefix(self.namespace), arping, "-U", "-c",
                                      "3", "-I", ifname, "-s", address, address])

    def plug_network(self, body: PlugNetwork) -> str:
        wanted = {_address(f.ip_address, f.subnet_cidr) for f in body.fixed_ips}
        link = self.link_by_mac(body.mac_address)
        ifname = str(link["ifname"])
        self._configure(ifname, wanted, wanted, body.mtu)
        for f in body.fixed_ips:
            self._add_routes(ifname, f.host_routes)
        LOG.info("network plugged on %s in namespace %s", ifname, self.namespace)
        return ifname

    def _configure(self, ifname: str, wanted: set[str], allowed: set[str],
                   mtu: int | None) -> None:
        have = self.addresses(ifname)
        if not have <= allowed:
            raise Conflict("Interface already plugged",
                           f"{ifname} already holds {', '.join(sorted(have - allowed))}")
        if mtu:
            self._run("link", "set", "dev", ifname, "mtu", str(mtu))
        for address in sorted(wanted - have):
            extra = ["nodad"] if _family(address) == "-6" else []
            self._run("addr", "add", address, "dev", ifname, *extra)
        self._run("link", "set", "dev", ifname, "up")

    def _allow_nonlocal_bind(self) -> None:
        result = proc.run([*proc.netns_prefix(self.namespace), "sysctl", "-q", "-w",
                           "net.ipv4.ip_nonlocal_bind=1", "net.ipv6.ip_nonlocal_bind=1"],
                          timeout=15)
        if not result.ok:
            raise AgentError("Error configuring the namespace", result.output.strip())

    def _add_routes(self, ifname: str, routes: list[HostRoute] | tuple[HostRoute, ...],
                    table: int | None = None) -> None:
        for r in routes:
            extra = ["table", str(table)] if table is not None else []
            self._run(_family(r.nexthop), "route", "replace", r.destination, "via", r.nexthop,
                      "dev", ifname, *extra)

    def _vip_table(self, ifname: str, vip: _Vip, table: int) -> None:
        fam = _family(vip.address)
        self._run(fam, "route", "replace", vip.subnet, "dev", ifname, "src", vip.address,
                  "table", str(table))
        if vip.gateway:
            self._run(fam, "route", "replace", "default", "via", vip.gateway, "dev", ifname,
                      "table", str(table))
        self._add_routes(ifname, vip.host_routes, table)
        host = f"{vip.address}/{ipaddress.ip_address(vip.address).max_prefixlen}"
        for rule in self._json(fam, "rule", "show"):
            if rule.get("src") == vip.address and str(rule.get("table")) == str(table):
                return
        self._run(fam, "rule", "add", "from", host, "table", str(table),
                  "priority", str(VIP_RULE_PRIORITY))
