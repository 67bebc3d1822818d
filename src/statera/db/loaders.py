"""Build the domain view of a load balancer's tree (statera.domain.model) from rows.

The view is the *desired* state: objects being deleted (PENDING_DELETE) are left out, so a
config rendered from it is what the data plane should serve once the operation is done.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from statera.db import models as m
from statera.domain import model as d
from statera.domain.enums import AmphoraStatus, ProvisioningStatus

_GONE = (ProvisioningStatus.PENDING_DELETE, ProvisioningStatus.DELETED)
LIVE_AMPHORA = (AmphoraStatus.ALLOCATED, AmphoraStatus.BOOTING, AmphoraStatus.PENDING_CREATE,
                AmphoraStatus.READY, AmphoraStatus.ERROR, AmphoraStatus.FAILOVER_STOPPED)


def _live(obj: object) -> bool:
    return getattr(obj, "provisioning_status", None) not in _GONE


def amphora_view(a: m.Amphora) -> d.Amphora:
    return d.Amphora(
        id=a.id, status=a.status, role=a.role, load_balancer_id=a.load_balancer_id,
        compute_id=a.compute_id, lb_network_ip=a.lb_network_ip, vrrp_ip=a.vrrp_ip,
        ha_ip=a.ha_ip, vrrp_port_id=a.vrrp_port_id, ha_port_id=a.ha_port_id,
        vrrp_interface=a.vrrp_interface, vrrp_id=a.vrrp_id, vrrp_priority=a.vrrp_priority,
        cert_expiration=a.cert_expiration, config_stale=bool(a.config_stale))


def _pool(p: m.Pool) -> d.Pool:
    sp = p.session_persistence
    hm = p.health_monitor
    return d.Pool(
        id=p.id, protocol=p.protocol, lb_algorithm=p.lb_algorithm, enabled=p.enabled,
        name=p.name,
        session_persistence=d.SessionPersistence(
            type=sp.type, cookie_name=sp.cookie_name,
            persistence_timeout=sp.persistence_timeout,
            persistence_granularity=sp.persistence_granularity) if sp else None,
        health_monitor=d.HealthMonitor(
            id=hm.id, type=hm.type, delay=hm.delay, timeout=hm.timeout,
            max_retries=hm.rise_threshold, max_retries_down=hm.fall_threshold,
            http_method=hm.http_method, url_path=hm.url_path,
            expected_codes=hm.expected_codes, http_version=hm.http_version,
            domain_name=hm.domain_name, enabled=hm.enabled,
            provisioning_status=hm.provisioning_status) if hm and _live(hm) else None,
        members=[d.Member(
            id=mb.id, address=mb.ip_address, protocol_port=mb.protocol_port,
            weight=1 if mb.weight is None else mb.weight, backup=mb.backup, enabled=mb.enabled,
            subnet_id=mb.subnet_id, monitor_address=mb.monitor_address,
            monitor_port=mb.monitor_port, provisioning_status=mb.provisioning_status,
            operating_status=mb.operating_status) for mb in p.members if _live(mb)],
        tls_enabled=p.tls_enabled, tls_certificate_id=p.tls_certificate_id,
        ca_tls_certificate_id=p.ca_tls_certificate_id, crl_container_id=p.crl_container_id,
        tls_ciphers=p.tls_ciphers, tls_versions=list(p.tls_versions or []),
        alpn_protocols=list(p.alpn_protocols or []), provisioning_status=p.provisioning_status)


def _listener(li: m.Listener, live_pools: set[str]) -> d.Listener:
    return d.Listener(
        id=li.id, protocol=li.protocol, protocol_port=li.protocol_port, enabled=li.enabled,
        name=li.name, connection_limit=-1 if li.connection_limit is None else li.connection_limit,
        default_pool_id=li.default_pool_id if li.default_pool_id in live_pools else None,
        default_tls_container_ref=li.tls_certificate_id,
        sni_container_refs=[s.tls_container_id for s in li.sni_containers],
        client_ca_tls_container_ref=li.client_ca_tls_certificate_id,
        client_authentication=li.client_authentication,
        client_crl_container_ref=li.client_crl_container_id,
        insert_headers=dict(li.insert_headers or {}),
        timeout_client_data=li.timeout_client_data,
        timeout_member_connect=li.timeout_member_connect,
        timeout_member_data=li.timeout_member_data, timeout_tcp_inspect=li.timeout_tcp_inspect,
        allowed_cidrs=[c.cidr for c in li.allowed_cidrs], tls_ciphers=li.tls_ciphers,
        tls_versions=list(li.tls_versions or []), alpn_protocols=list(li.alpn_protocols or []),
        hsts_max_age=li.hsts_max_age, hsts_include_subdomains=bool(li.hsts_include_subdomains),
        hsts_preload=bool(li.hsts_preload), peer_port=li.peer_port,
        provisioning_status=li.provisioning_status,
        l7policies=[d.L7Policy(
            id=pol.id, action=pol.action, position=pol.position, enabled=pol.enabled,
            redirect_pool_id=pol.redirect_pool_id if pol.redirect_pool_id in live_pools
            else None,
            redirect_url=pol.redirect_url, redirect_prefix=pol.redirect_prefix,
            redirect_http_code=pol.redirect_http_code,
            rules=[d.L7Rule(id=r.id, type=r.type, compare_type=r.compare_type, value=r.value,
                            key=r.key, invert=r.invert, enabled=r.enabled)
                   for r in pol.rules if _live(r)])
            for pol in li.l7policies if _live(pol)])


TREE_OPTIONS = (
    selectinload(m.LoadBalancer.listeners).selectinload(m.Listener.l7policies)
    .selectinload(m.L7Policy.rules),
    selectinload(m.LoadBalancer.pools).selectinload(m.Pool.members),
    selectinload(m.LoadBalancer.pools).selectinload(m.Pool.health_monitor),
)


def load_tree(session: Session, lb_id: str) -> d.LoadBalancer | None:
    lb = session.scalars(sa.select(m.LoadBalancer).where(m.LoadBalancer.id == lb_id)
                         .options(*TREE_OPTIONS)).unique().first()
    if lb is None:
        return None
    pools = [_pool(p) for p in lb.pools if _live(p)]
    live_pools = {p.id for p in pools}
    amps = session.scalars(sa.select(m.Amphora).where(
        m.Amphora.load_balancer_id == lb.id, m.Amphora.status.in_(LIVE_AMPHORA))
        .order_by(m.Amphora.role, m.Amphora.created_at)).all()
    vip = lb.vip
    return d.LoadBalancer(
        id=lb.id, project_id=lb.project_id or "", topology=lb.topology or "SINGLE",
        enabled=lb.enabled, name=lb.name, provisioning_status=lb.provisioning_status,
        vip=d.Vip(ip_address=vip.ip_address, subnet_id=vip.subnet_id,
                  network_id=vip.network_id, port_id=vip.port_id,
                  qos_policy_id=vip.qos_policy_id, octavia_owned=vip.octavia_owned)
        if vip else None,
        additional_vips=[d.AdditionalVip(subnet_id=a.subnet_id, ip_address=a.ip_address,
                                         network_id=a.network_id, port_id=a.port_id)
                         for a in lb.additional_vips],
        listeners=[_listener(li, live_pools) for li in lb.listeners if _live(li)],
        pools=pools,
        amphorae=[amphora_view(a) for a in amps],
    )
