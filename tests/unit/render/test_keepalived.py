"""keepalived.conf renderer: the structure of a pair's config, and refusals of every value
that could change the file's structure."""

from __future__ import annotations

import dataclasses
import re

import pytest

from statera.domain.model import AdditionalVip, Amphora, LoadBalancer, Vip
from statera.render.escape import RenderError
from statera.render.keepalived import (
    KeepalivedOptions,
    advert_interval,
    instance_name,
    render_keepalived_config,
)

LB_ID = "7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8"
MASTER = Amphora(id="00000000-0000-4000-8000-000000000001", status="ALLOCATED",
                 role="MASTER", vrrp_ip="10.20.0.11", vrrp_interface="eth1", vrrp_id=1,
                 vrrp_priority=100)
BACKUP = dataclasses.replace(MASTER, id="00000000-0000-4000-8000-000000000002",
                             role="BACKUP", vrrp_ip="10.20.0.12", vrrp_priority=90)
OPTS = KeepalivedOptions(check_script="/var/lib/statera-agent/vrrp/check_haproxy.sh",
                         vip_cidr="10.20.0.0/24", vip_gateway="10.20.0.1")


def _lb(*amps: Amphora, vip: str = "10.20.0.10", extra: tuple[str, ...] = ()) -> LoadBalancer:
    return LoadBalancer(
        id=LB_ID, project_id="p", topology="ACTIVE_STANDBY",
        vip=Vip(ip_address=vip, subnet_id=None, network_id=None, port_id=None),
        additional_vips=[AdditionalVip(subnet_id="s", ip_address=a) for a in extra],
        amphorae=list(amps or (MASTER, BACKUP)))


def _block(text: str, name: str) -> list[str]:
    """The lines inside ``name { ... }`` (one level)."""
    m = re.search(rf"^\s*{re.escape(name)} \{{\n(.*?)^\s*\}}", text, re.S | re.M)
    assert m, f"no block {name!r} in:\n{text}"
    return [line.strip() for line in m[1].splitlines() if line.strip()]


def test_master_config_structure() -> None:
    text = render_keepalived_config(_lb(), MASTER, OPTS)
    instance = _block(text, f"vrrp_instance {LB_ID.replace('-', '')}")
    assert instance[:7] == ["state BACKUP", "interface eth1", "virtual_router_id 1",
                            "priority 100", "nopreempt", "accept", "advert_int 0.20"]
    assert "unicast_src_ip 10.20.0.11" in instance
    assert "check_unicast_src" in instance
    assert _block(text, "unicast_peer") == ["10.20.0.12"]
    assert _block(text, "virtual_ipaddress") == ["10.20.0.10/32 dev eth1"]
    assert _block(text, "virtual_routes") == [
        "10.20.0.0/24 dev eth1 src 10.20.0.10 scope link table 100",
        "default via 10.20.0.1 dev eth1 onlink table 100"]
    assert _block(text, "virtual_rules") == ["from 10.20.0.10/32 table 100 priority 100"]
    assert _block(text, "track_script") == ["check_haproxy"]
    assert _block(text, "vrrp_script check_haproxy") == [
        f"script {OPTS.check_script}", "interval 1", "timeout 1", "fall 2", "rise 2"]
    glob = _block(text, "global_defs")
    assert "vrrp_version 3" in glob and "enable_script_security" in glob
    assert "authentication" not in text
    # Both amphorae start as BACKUP: nopreempt needs it.
    assert text.count("state BACKUP") == 1 and "state MASTER" not in text


def test_backup_names_the_master_as_its_peer() -> None:
    text = render_keepalived_config(_lb(), BACKUP, OPTS)
    assert "priority 90" in text
    assert _block(text, "unicast_peer") == ["10.20.0.11"]
    assert "unicast_src_ip 10.20.0.12" in text


def test_vrrp_v2_whole_seconds_and_password() -> None:
    opts = dataclasses.replace(OPTS, vrrp_version=2, advert_int=1, auth_pass="Ab3dE5gH")
    text = render_keepalived_config(_lb(), MASTER, opts)
    assert "advert_int 1\n" in text and "vrrp_version 2" in text
    assert _block(text, "authentication") == ["auth_type PASS", "auth_pass Ab3dE5gH"]


def test_other_family_and_additional_vips_are_excluded_from_adverts() -> None:
    text = render_keepalived_config(_lb(vip="10.20.0.10", extra=("2001:db8::10",)), MASTER,
                                    dataclasses.replace(OPTS, vip_cidr=None))
    assert _block(text, "virtual_ipaddress") == ["10.20.0.10/32 dev eth1"]
    assert _block(text, "virtual_ipaddress_excluded") == ["2001:db8::10/128 dev eth1"]
    assert "virtual_routes" not in text


@pytest.mark.parametrize(("value", "version", "shown"), [
    (0.2, 3, "0.20"), (1, 3, "1.00"), (0.05, 3, "0.05"), (40.95, 3, "40.95"), (1, 2, "1"),
    (3.0, 2, "3")])
def test_advert_interval(value: float, version: int, shown: str) -> None:
    assert advert_interval(value, version) == shown


@pytest.mark.parametrize(("value", "version"), [
    (0.005, 3), (41, 3), (0.123, 3), (0.5, 2), (0, 2), (256, 2), ("1", 3), (True, 3)])
def test_advert_interval_refused(value: object, version: int) -> None:
    with pytest.raises(RenderError):
        advert_interval(value, version)


HOSTILE = ["eth1\n}", "eth1 }", "eth1#x", "eth1!x", "$IF", "eth1\x00", "eth1\u2028",
           "", "a" * 16, "eth1;rm"]


@pytest.mark.parametrize("interface", HOSTILE)
def test_hostile_interface_refused(interface: str) -> None:
    amp = dataclasses.replace(MASTER, vrrp_interface=interface)
    with pytest.raises(RenderError):
        render_keepalived_config(_lb(amp, BACKUP), amp, OPTS)


@pytest.mark.parametrize("script", [
    "relative/path.sh", "/a b.sh", "/a\n}.sh", "/a$HOME.sh", "/a#x", "/a/../etc/x", "/a\"b",
    "/a!b", "/a;b"])
def test_hostile_check_script_refused(script: str) -> None:
    with pytest.raises(RenderError):
        render_keepalived_config(_lb(), MASTER, dataclasses.replace(OPTS, check_script=script))


@pytest.mark.parametrize("address", ["10.20.0.11\n}", "fe80::1%eth0", "10.20.0.300", "x", ""])
def test_hostile_addresses_refused(address: str) -> None:
    peer = dataclasses.replace(BACKUP, vrrp_ip=address)
    with pytest.raises(RenderError):
        render_keepalived_config(_lb(MASTER, peer), MASTER, OPTS)
    with pytest.raises(RenderError):
        render_keepalived_config(_lb(vip=address or "x"), MASTER, OPTS)


@pytest.mark.parametrize("change", [
    {"vrrp_priority": 0}, {"vrrp_priority": 255}, {"vrrp_priority": None},
    {"vrrp_id": 0}, {"vrrp_id": 256}, {"vrrp_ip": None}])
def test_out_of_range_amphora_fields_refused(change: dict[str, object]) -> None:
    amp = dataclasses.replace(MASTER, **change)  # type: ignore[arg-type]
    with pytest.raises(RenderError):
        render_keepalived_config(_lb(amp, BACKUP), amp, OPTS)


@pytest.mark.parametrize("opts", [
    dataclasses.replace(OPTS, auth_pass="secret12"),                      # v3 has no auth
    dataclasses.replace(OPTS, vrrp_version=2, advert_int=1, auth_pass="pass word"),
    dataclasses.replace(OPTS, vrrp_version=2, advert_int=1, auth_pass="123456789"),
    dataclasses.replace(OPTS, vrrp_version=4),
    dataclasses.replace(OPTS, vip_cidr="10.99.0.0/24"),                   # VIP not in it
    dataclasses.replace(OPTS, vip_cidr="10.20.0.0/24\n}"),
    dataclasses.replace(OPTS, vip_gateway="2001:db8::1"),
    dataclasses.replace(OPTS, check_interval=0),
    dataclasses.replace(OPTS, fail_count=1000)])
def test_bad_options_refused(opts: KeepalivedOptions) -> None:
    with pytest.raises(RenderError):
        render_keepalived_config(_lb(), MASTER, opts)


def test_a_lone_amphora_is_refused_rather_than_falling_back_to_multicast() -> None:
    with pytest.raises(RenderError, match="no peer"):
        render_keepalived_config(_lb(MASTER), MASTER, OPTS)


def test_peers_of_another_family_refused() -> None:
    peer = dataclasses.replace(BACKUP, vrrp_ip="2001:db8::12")
    with pytest.raises(RenderError, match="family"):
        render_keepalived_config(_lb(MASTER, peer), MASTER, OPTS)


def test_instance_name_is_the_id_without_dashes() -> None:
    assert instance_name(LB_ID) == "7d6c5b4a39284716a5b4c3d2e1f0a9b8"
    with pytest.raises(RenderError):
        instance_name("not-a-uuid")
