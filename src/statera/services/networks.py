"""The tenant networks declared in the config, and addresses taken on them.

VIP allocation picks the lowest free address of the subnet's allocation range; the unique
(subnet_id, ip_address) constraint of the port table makes two concurrent requests unable to
take the same one (the loser retries with the next address).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.config.settings import Settings, TenantNetwork
from statera.db import models as m
from statera.domain.errors import Conflict, InvalidInput, NotFound
from statera.services.common import new_id

_SPREAD = 8


@dataclass(frozen=True)
class Placement:
    network: TenantNetwork
    ip_address: str | None


class NetworkCatalog:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.networks = list(settings.networks)

    def by_network(self, network_id: str) -> TenantNetwork | None:
        return next((n for n in self.networks if n.id == network_id), None)

    def by_subnet(self, subnet_id: str) -> TenantNetwork | None:
        return next((n for n in self.networks if n.subnet_id == subnet_id), None)

    def by_address(self, address: str) -> TenantNetwork | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        return next((n for n in self.networks if ip in ipaddress.ip_network(n.cidr)), None)

    def visible_to(self, net: TenantNetwork, project_id: str | None, admin: bool) -> bool:
        return admin or not net.project_id or net.project_id == project_id

    def resolve_vip(self, *, subnet_id: str | None, network_id: str | None,
                    ip_address: str | None) -> Placement:
        """Check a VIP request against the declared networks and the networking options."""
        opts = self.settings.networking
        net: TenantNetwork | None = None
        if subnet_id:
            net = self.by_subnet(subnet_id)
            if net is None:
                raise InvalidInput(f"Subnet {subnet_id} could not be found.")
            if network_id and network_id != net.id:
                raise InvalidInput(f"Subnet {subnet_id} is not on network {network_id}.")
        elif network_id:
            net = self.by_network(network_id)
            if net is None:
                raise InvalidInput(f"Network {network_id} could not be found.")
        else:
            raise InvalidInput("At least one of vip_port_id, vip_network_id or vip_subnet_id "
                               "is required.")
        if opts.valid_vip_networks and net.id not in opts.valid_vip_networks:
            raise InvalidInput(f"Supplied VIP network_id {net.id} is not allowed by this "
                               "configuration.")
        if net.id in opts.denylist_vip_networks:
            raise InvalidInput(f"Supplied VIP network_id {net.id} is not allowed by this "
                               "configuration.")
        if ip_address is not None:
            try:
                ip = ipaddress.ip_address(ip_address)
            except ValueError:
                raise InvalidInput(f"Invalid input for field/attribute vip_address. Value: "
                                   f"'{ip_address}'. Not a valid IP address.") from None
            if ip not in ipaddress.ip_network(net.cidr):
                raise InvalidInput(f"VIP address {ip_address} is not in subnet {net.cidr}.")
            if str(ip) in opts.reserved_ips or str(ip) == net.gateway_ip:
                raise InvalidInput(f"VIP address {ip_address} is a reserved address.")
            ip_address = str(ip)
        return Placement(network=net, ip_address=ip_address)

    def take_address(self, session: Session, net: TenantNetwork, *, ip_address: str | None,
                     name: str, device_owner: str, device_id: str,
                     project_id: str | None) -> m.Port:
        """Record an address on ``net`` (the given one, or the lowest free one)."""
        if ip_address is not None:
            taken = session.scalar(sa.select(m.Port.id).where(
                m.Port.subnet_id == net.subnet_id, m.Port.ip_address == ip_address))
            if taken:
                raise Conflict(f"IP address {ip_address} is already allocated in subnet "
                               f"{net.subnet_id}.")
            return self._insert(session, net, ip_address, name, device_owner, device_id,
                                project_id)
        reserved = set(self.settings.networking.reserved_ips)
        if net.gateway_ip:
            reserved.add(net.gateway_ip)
        start = int(ipaddress.ip_address(net.allocation_start))
        end = int(ipaddress.ip_address(net.allocation_end))
        lost: set[str] = set()
        for _round in range(20):
            used = set(session.scalars(sa.select(m.Port.ip_address).where(
                m.Port.subnet_id == net.subnet_id))) | reserved | lost
            # Concurrent creates would all race for the lowest free address (and on MariaDB
            # deadlock over it): take one of the lowest few at random instead.
            free: list[str] = []
            for value in range(start, end + 1):
                text = str(ipaddress.ip_address(value))
                if text not in used:
                    free.append(text)
                    if len(free) >= _SPREAD:
                        break
            if not free:
                raise Conflict(f"No more IP addresses available on subnet {net.subnet_id}.")
            text = random.choice(free)
            try:
                return self._insert(session, net, text, name, device_owner, device_id,
                                    project_id)
            except Conflict:
                lost.add(text)  # taken by a concurrent request since we looked
        raise Conflict(f"Could not allocate an address on subnet {net.subnet_id}; try again.")

    def _insert(self, session: Session, net: TenantNetwork, ip: str, name: str,
                device_owner: str, device_id: str, project_id: str | None) -> m.Port:
        port = m.Port(id=new_id(), name=name, project_id=project_id, network_id=net.id,
                      subnet_id=net.subnet_id, ip_address=ip, mac_address=_random_mac(),
                      device_owner=device_owner, device_id=device_id)
        try:
            with session.begin_nested():
                session.add(port)
        except sa.exc.IntegrityError:
            raise Conflict(f"IP address {ip} is already allocated in subnet "
                           f"{net.subnet_id}.") from None
        return port

    def release(self, session: Session, port_id: str | None) -> None:
        if port_id:
            session.execute(sa.delete(m.Port).where(m.Port.id == port_id))

    def port(self, session: Session, port_id: str) -> m.Port:
        port = session.get(m.Port, port_id)
        if port is None:
            raise NotFound(resource="Port", id=port_id)
        return port


def _random_mac() -> str:
    # Locally administered, unicast.
    octets = [0xFA, 0x16, 0x3E] + [random.randint(0, 255) for _ in range(3)]
    return ":".join(f"{o:02x}" for o in octets)
