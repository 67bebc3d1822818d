"""keepalived.conf for one amphora of an ACTIVE_STANDBY pair: a pure function of the load
balancer, the amphora and the options.

keepalived runs in the amphora's tenant namespace with only its VRRP subsystem. Both
amphorae start in state BACKUP with ``nopreempt`` (nopreempt needs it): the higher priority
(MASTER, 100) wins the first election, and an amphora that comes back never takes the VIP
from the one holding it. Adverts go by unicast from the amphora's own VRRP address to its
peer's, and only the listed peers are heard (``check_unicast_src``), so pairs of different
load balancers on one network, which all use virtual router id 1, never hear each other.
VRRPv3 by default, for sub-second adverts (it has no authentication); VRRPv2 uses whole
seconds and a password, as upstream. A check script run every ``check_interval`` seconds
takes the VIP away from an amphora whose haproxy died.

Values are checked against what keepalived reads: it splits lines on blanks, ``#`` and ``!``
start comments and ``$NAME`` is substituted, so nothing free-form is ever written; every value
is an address, a number, a name of a fixed shape or a checked path.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from statera.domain.model import Amphora, LoadBalancer
from statera.render import escape as esc
from statera.render.escape import Cfg, RenderError, literal
from statera.render.templating import TEMPLATES

__all__ = ["CHECK_SCRIPT_NAME", "KeepalivedOptions", "RenderError", "instance_name",
           "render_keepalived_config"]

CHECK_SCRIPT_NAME = "check_haproxy"
_INTERFACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
_AUTH_PASS = re.compile(r"[A-Za-z0-9]{1,8}")


@dataclass(frozen=True)
class KeepalivedOptions:
    check_script: str
    """Amphora-side path of the script that fails when haproxy is dead (the agent writes
    it)."""
    vrrp_version: int = 3
    advert_int: float = 0.2
    check_interval: int = 1
    check_timeout: int = 1
    fail_count: int = 2
    success_count: int = 2
    garp_master_delay: int = 1
    """Seconds after taking over until the second burst of gratuitous ARPs."""
    garp_refresh_interval: int = 5
    garp_refresh_count: int = 2
    auth_pass: str | None = None
    """VRRPv2 only: up to 8 letters and digits."""
    vip_cidr: str | None = None
    """The VIP's subnet: with it, replies from the VIP are policy-routed out of the VIP
    interface (the routes and the rule follow the VIP, so keepalived owns them)."""
    vip_gateway: str | None = None
    route_table: int = 100
    rule_priority: int = 100


_ENV = TEMPLATES


def instance_name(lb_id: str) -> Cfg:
    """The VRRP instance (upstream's group name): the load balancer id without dashes."""
    return literal(esc.object_id(lb_id, "load balancer id").replace("-", ""))


def advert_interval(value: object, version: int) -> Cfg:
    """keepalived's advert_int: centiseconds under VRRPv3 (0.01-40.95), whole seconds
    under VRRPv2 (1-255)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise esc.refuse("advert_int", value, "a number is required")
    if version == 2:
        if value != int(value) or not 1 <= value <= 255:
            raise esc.refuse("advert_int", value, "VRRPv2 needs whole seconds from 1 to 255")
        return literal(str(int(value)))
    centis = round(value * 100)
    if abs(centis - value * 100) > 1e-6 or not 1 <= centis <= 4095:
        raise esc.refuse("advert_int", value,
                         "VRRPv3 needs 0.01 to 40.95 seconds in steps of 0.01")
    return literal(f"{centis // 100}.{centis % 100:02d}")


def render_keepalived_config(lb: LoadBalancer, amphora: Amphora,
                             opts: KeepalivedOptions) -> str:
    """The keepalived.conf of ``amphora``. Its peers are the load balancer's other amphorae
    that have a VRRP address. Raises RenderError rather than write a doubtful value."""
    what = f"amphora {amphora.id}"
    lb_id = esc.object_id(lb.id, "load balancer id")
    if opts.vrrp_version not in (2, 3):
        raise esc.refuse("vrrp_version", opts.vrrp_version, "2 or 3 is required")
    if not amphora.vrrp_ip:
        raise RenderError(f"{what} has no VRRP address.")
    src = esc.ip_address(amphora.vrrp_ip, f"{what} vrrp_ip")
    peers = [esc.ip_address(a.vrrp_ip, f"amphora {a.id} vrrp_ip") for a in lb.amphorae
             if a.id != amphora.id and a.vrrp_ip]
    if not peers:
        # keepalived would fall back to multicast, where every pair on the network could
        # hear it: refuse rather than run an instance that can disturb others.
        raise RenderError(f"{what}: no peer amphora with a VRRP address to pair with.")
    if any(p.version != src.version for p in peers):
        raise RenderError(f"{what}: its peers' VRRP addresses are of another IP family.")
    if lb.vip is None or not lb.vip.ip_address:
        raise RenderError(f"load balancer {lb.id} has no VIP address.")
    vip = esc.ip_address(lb.vip.ip_address, f"load balancer {lb.id} VIP")
    extra = [esc.ip_address(a.ip_address, f"load balancer {lb.id} additional VIP")
             for a in lb.additional_vips if a.ip_address]
    # virtual_ipaddress holds one family (the adverts carry it); the rest are excluded.
    vips = [vip] if vip.version == src.version else []
    excluded = ([] if vips else [vip]) + [a for a in extra if a != vip]
    if opts.auth_pass is not None and opts.vrrp_version == 3:
        raise esc.refuse("auth_pass", "***", "VRRPv3 has no authentication")
    interface = esc.matching(amphora.vrrp_interface, _INTERFACE, f"{what} vrrp_interface",
                             "an interface name")
    routes, rules = _policy_routes(vip, interface, opts)
    text = _ENV.get_template("keepalived.conf.j2").render(
        lb_id=lb_id,
        amphora_id=esc.object_id(amphora.id, "amphora id"),
        instance=instance_name(lb.id),
        check_name=literal(CHECK_SCRIPT_NAME),
        g={
            "version": literal(str(opts.vrrp_version)),
            "garp_master_delay": esc.integer(opts.garp_master_delay, "garp_master_delay",
                                             0, 3600),
            "garp_refresh_interval": esc.integer(opts.garp_refresh_interval,
                                                 "garp_refresh_interval", 0, 86400),
            "garp_refresh_count": esc.integer(opts.garp_refresh_count, "garp_refresh_count",
                                              1, 100),
        },
        check={
            "script": esc.path(opts.check_script, "check_script"),
            "interval": esc.integer(opts.check_interval, "check_interval", 1, 3600),
            "timeout": esc.integer(opts.check_timeout, "check_timeout", 1, 3600),
            "fall": esc.integer(opts.fail_count, "fail_count", 1, 100),
            "rise": esc.integer(opts.success_count, "success_count", 1, 100),
        },
        vrrp={
            "interface": interface,
            "router_id": esc.integer(amphora.vrrp_id, f"{what} vrrp_id", 1, 255),
            "priority": esc.integer(amphora.vrrp_priority, f"{what} vrrp_priority", 1, 254),
            "advert_int": advert_interval(opts.advert_int, opts.vrrp_version),
            "auth_pass": (esc.matching(opts.auth_pass, _AUTH_PASS, "auth_pass",
                                       "1 to 8 letters or digits")
                          if opts.auth_pass is not None else None),
            "src_ip": literal(str(src)),
            "peers": [literal(str(p)) for p in dict.fromkeys(peers)],
        },
        vips=[_host(v) for v in vips],
        excluded=[_host(v) for v in excluded],
        routes=routes,
        rules=rules,
    )
    return text


def _host(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Cfg:
    return literal(f"{ip}/{ip.max_prefixlen}")


def _policy_routes(vip: ipaddress.IPv4Address | ipaddress.IPv6Address, interface: Cfg,
                   opts: KeepalivedOptions) -> tuple[list[Cfg], list[Cfg]]:
    if opts.vip_cidr is None:
        return [], []
    subnet = esc.cidr(opts.vip_cidr)
    if subnet is None or ipaddress.ip_network(subnet).version != vip.version:
        raise esc.refuse("vip_cidr", opts.vip_cidr, "a network of the VIP's family is required")
    if vip not in ipaddress.ip_network(subnet):
        raise esc.refuse("vip_cidr", opts.vip_cidr, "the VIP is not in it")
    table = esc.integer(opts.route_table, "route_table", 1, 252)
    priority = esc.integer(opts.rule_priority, "rule_priority", 1, 32765)
    routes = [literal(f"{subnet} dev {interface} src {vip} scope link table {table}")]
    if opts.vip_gateway is not None:
        gateway = esc.ip_address(opts.vip_gateway, "vip_gateway")
        if gateway.version != vip.version:
            raise esc.refuse("vip_gateway", opts.vip_gateway, "not of the VIP's family")
        default = "default" if vip.version == 4 else "::/0"
        routes.append(literal(f"{default} via {gateway} dev {interface} onlink table {table}"))
    rules = [literal(f"from {_host(vip)} table {table} priority {priority}")]
    return routes, rules
