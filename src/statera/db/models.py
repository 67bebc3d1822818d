"""SQLAlchemy models: Octavia's tables (reference §12) plus Statera's operation and user tables.

API names differ from column names in a few places, as upstream: ``admin_state_up`` is
``enabled``, ``max_retries`` is ``rise_threshold``, ``max_retries_down`` is ``fall_threshold``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from statera.db.types import utcnow

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
# Up to 16 MiB on MariaDB (a plain BLOB stops at 64 KiB).
Blob = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def _id() -> Mapped[str]:
    return mapped_column(sa.String(36), primary_key=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, onupdate=utcnow, nullable=True)


class StatusMixin:
    provisioning_status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    operating_status: Mapped[str] = mapped_column(sa.String(16), nullable=False)


class Tag(Base):
    """Tags of every taggable resource, keyed by the resource's id."""

    __tablename__ = "tags"
    resource_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(255), primary_key=True)


class LoadBalancer(TimestampMixin, StatusMixin, Base):
    __tablename__ = "load_balancer"
    id: Mapped[str] = _id()
    project_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.String(255))
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    topology: Mapped[str | None] = mapped_column(sa.String(36))
    server_group_id: Mapped[str | None] = mapped_column(sa.String(36))
    provider: Mapped[str | None] = mapped_column(sa.String(64))
    flavor_id: Mapped[str | None] = mapped_column(sa.String(36))
    availability_zone: Mapped[str | None] = mapped_column(sa.String(255))

    vip: Mapped[Vip | None] = relationship(
        back_populates="load_balancer", uselist=False, cascade="all, delete-orphan",
        lazy="joined")
    additional_vips: Mapped[list[AdditionalVip]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")
    listeners: Mapped[list[Listener]] = relationship(
        back_populates="load_balancer", cascade="all, delete-orphan",
        order_by="Listener.created_at")
    pools: Mapped[list[Pool]] = relationship(
        back_populates="load_balancer", cascade="all, delete-orphan",
        order_by="Pool.created_at")
    amphorae: Mapped[list[Amphora]] = relationship(back_populates="load_balancer")


class Vip(Base):
    __tablename__ = "vip"
    load_balancer_id: Mapped[str] = mapped_column(
        sa.ForeignKey("load_balancer.id", ondelete="CASCADE"), primary_key=True)
    ip_address: Mapped[str | None] = mapped_column(sa.String(64))
    port_id: Mapped[str | None] = mapped_column(sa.String(36))
    subnet_id: Mapped[str | None] = mapped_column(sa.String(36))
    network_id: Mapped[str | None] = mapped_column(sa.String(36))
    qos_policy_id: Mapped[str | None] = mapped_column(sa.String(36))
    octavia_owned: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    vnic_type: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="normal")
    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="vip")


class AdditionalVip(Base):
    __tablename__ = "additional_vip"
    load_balancer_id: Mapped[str] = mapped_column(
        sa.ForeignKey("load_balancer.id", ondelete="CASCADE"), primary_key=True)
    subnet_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    ip_address: Mapped[str | None] = mapped_column(sa.String(64))
    port_id: Mapped[str | None] = mapped_column(sa.String(36))
    network_id: Mapped[str | None] = mapped_column(sa.String(36))


class Port(TimestampMixin, Base):
    """An address taken on a tenant network (a VIP, an amphora's VRRP address, ...).

    The unique (subnet_id, ip_address) pair is what makes VIP allocation free of duplicates.
    Served read-only at /v2.0/ports in Neutron's shape.
    """

    __tablename__ = "port"
    __table_args__ = (sa.UniqueConstraint("subnet_id", "ip_address", name="uq_port_subnet_ip"),)
    id: Mapped[str] = _id()
    name: Mapped[str | None] = mapped_column(sa.String(255))
    project_id: Mapped[str | None] = mapped_column(sa.String(36))
    network_id: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    subnet_id: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    ip_address: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    mac_address: Mapped[str | None] = mapped_column(sa.String(17))
    device_owner: Mapped[str | None] = mapped_column(sa.String(255))
    device_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)


class Listener(TimestampMixin, StatusMixin, Base):
    __tablename__ = "listener"
    __table_args__ = (
        sa.UniqueConstraint("load_balancer_id", "protocol", "protocol_port",
                            name="uq_listener_lb_protocol_port"),
    )
    id: Mapped[str] = _id()
    project_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    load_balancer_id: Mapped[str] = mapped_column(
        sa.ForeignKey("load_balancer.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.String(255))
    protocol: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    protocol_port: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    connection_limit: Mapped[int | None] = mapped_column(sa.Integer)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    tls_certificate_id: Mapped[str | None] = mapped_column(sa.String(255))
    default_pool_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("pool.id", ondelete="SET NULL"), index=True)
    peer_port: Mapped[int | None] = mapped_column(sa.Integer)
    insert_headers: Mapped[dict[str, str] | None] = mapped_column(sa.JSON)
    timeout_client_data: Mapped[int | None] = mapped_column(sa.Integer)
    timeout_member_connect: Mapped[int | None] = mapped_column(sa.Integer)
    timeout_member_data: Mapped[int | None] = mapped_column(sa.Integer)
    timeout_tcp_inspect: Mapped[int | None] = mapped_column(sa.Integer)
    client_ca_tls_certificate_id: Mapped[str | None] = mapped_column(sa.String(255))
    client_authentication: Mapped[str] = mapped_column(sa.String(10), nullable=False,
                                                       default="NONE")
    client_crl_container_id: Mapped[str | None] = mapped_column(sa.String(255))
    tls_ciphers: Mapped[str | None] = mapped_column(sa.String(2048))
    tls_versions: Mapped[list[str] | None] = mapped_column(sa.JSON)
    alpn_protocols: Mapped[list[str] | None] = mapped_column(sa.JSON)
    hsts_max_age: Mapped[int | None] = mapped_column(sa.Integer)
    hsts_include_subdomains: Mapped[bool | None] = mapped_column(sa.Boolean)
    hsts_preload: Mapped[bool | None] = mapped_column(sa.Boolean)

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="listeners")
    default_pool: Mapped[Pool | None] = relationship(foreign_keys=[default_pool_id])
    sni_containers: Mapped[list[SNI]] = relationship(
        cascade="all, delete-orphan", order_by="SNI.position", lazy="selectin")
    allowed_cidrs: Mapped[list[ListenerCidr]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")
    l7policies: Mapped[list[L7Policy]] = relationship(
        back_populates="listener", cascade="all, delete-orphan", order_by="L7Policy.position")


class SNI(Base):
    __tablename__ = "sni"
    listener_id: Mapped[str] = mapped_column(
        sa.ForeignKey("listener.id", ondelete="CASCADE"), primary_key=True)
    tls_container_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer, nullable=False)


class ListenerCidr(Base):
    __tablename__ = "listener_cidr"
    listener_id: Mapped[str] = mapped_column(
        sa.ForeignKey("listener.id", ondelete="CASCADE"), primary_key=True)
    cidr: Mapped[str] = mapped_column(sa.String(64), primary_key=True)


class Pool(TimestampMixin, StatusMixin, Base):
    __tablename__ = "pool"
    id: Mapped[str] = _id()
    project_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    load_balancer_id: Mapped[str] = mapped_column(
        sa.ForeignKey("load_balancer.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.String(255))
    protocol: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    lb_algorithm: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    tls_certificate_id: Mapped[str | None] = mapped_column(sa.String(255))
    ca_tls_certificate_id: Mapped[str | None] = mapped_column(sa.String(255))
    crl_container_id: Mapped[str | None] = mapped_column(sa.String(255))
    tls_enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    tls_ciphers: Mapped[str | None] = mapped_column(sa.String(2048))
    tls_versions: Mapped[list[str] | None] = mapped_column(sa.JSON)
    alpn_protocols: Mapped[list[str] | None] = mapped_column(sa.JSON)

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="pools")
    members: Mapped[list[Member]] = relationship(
        back_populates="pool", cascade="all, delete-orphan", order_by="Member.created_at")
    health_monitor: Mapped[HealthMonitor | None] = relationship(
        back_populates="pool", uselist=False, cascade="all, delete-orphan")
    session_persistence: Mapped[SessionPersistence | None] = relationship(
        uselist=False, cascade="all, delete-orphan", lazy="joined")


class SessionPersistence(Base):
    __tablename__ = "session_persistence"
    pool_id: Mapped[str] = mapped_column(sa.ForeignKey("pool.id", ondelete="CASCADE"),
                                         primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    cookie_name: Mapped[str | None] = mapped_column(sa.String(255))
    persistence_timeout: Mapped[int | None] = mapped_column(sa.Integer)
    persistence_granularity: Mapped[str | None] = mapped_column(sa.String(64))


class Member(TimestampMixin, StatusMixin, Base):
    __tablename__ = "member"
    __table_args__ = (
        sa.UniqueConstraint("pool_id", "ip_address", "protocol_port",
                            name="uq_member_pool_address_port"),
    )
    id: Mapped[str] = _id()
    project_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    pool_id: Mapped[str] = mapped_column(sa.ForeignKey("pool.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    subnet_id: Mapped[str | None] = mapped_column(sa.String(36))
    ip_address: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    protocol_port: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    weight: Mapped[int | None] = mapped_column(sa.Integer)
    backup: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    monitor_address: Mapped[str | None] = mapped_column(sa.String(64))
    monitor_port: Mapped[int | None] = mapped_column(sa.Integer)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    vnic_type: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="normal")

    pool: Mapped[Pool] = relationship(back_populates="members")


class HealthMonitor(TimestampMixin, StatusMixin, Base):
    __tablename__ = "health_monitor"
    id: Mapped[str] = _id()
    project_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    pool_id: Mapped[str] = mapped_column(sa.ForeignKey("pool.id", ondelete="CASCADE"),
                                         nullable=False, unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    type: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    delay: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    timeout: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    fall_threshold: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    rise_threshold: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    http_method: Mapped[str | None] = mapped_column(sa.String(16))
    url_path: Mapped[str | None] = mapped_column(sa.String(2048))
    expected_codes: Mapped[str | None] = mapped_column(sa.String(64))
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    http_version: Mapped[float | None] = mapped_column(sa.Float)
    domain_name: Mapped[str | None] = mapped_column(sa.String(255))

    pool: Mapped[Pool] = relationship(back_populates="health_monitor")


class L7Policy(TimestampMixin, StatusMixin, Base):
    __tablename__ = "l7policy"
    id: Mapped[str] = _id()
    project_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    listener_id: Mapped[str] = mapped_column(sa.ForeignKey("listener.id", ondelete="CASCADE"),
                                             nullable=False, index=True)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    redirect_pool_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("pool.id", ondelete="SET NULL"), index=True)
    redirect_url: Mapped[str | None] = mapped_column(sa.String(255))
    redirect_prefix: Mapped[str | None] = mapped_column(sa.String(255))
    redirect_http_code: Mapped[int | None] = mapped_column(sa.Integer)
    position: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)

    listener: Mapped[Listener] = relationship(back_populates="l7policies")
    rules: Mapped[list[L7Rule]] = relationship(
        back_populates="l7policy", cascade="all, delete-orphan", order_by="L7Rule.created_at")


class L7Rule(TimestampMixin, StatusMixin, Base):
    __tablename__ = "l7rule"
    id: Mapped[str] = _id()
    project_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    l7policy_id: Mapped[str] = mapped_column(sa.ForeignKey("l7policy.id", ondelete="CASCADE"),
                                             nullable=False, index=True)
    type: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    compare_type: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    key: Mapped[str | None] = mapped_column(sa.String(255))
    value: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    invert: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)

    l7policy: Mapped[L7Policy] = relationship(back_populates="rules")


class Amphora(TimestampMixin, Base):
    __tablename__ = "amphora"
    id: Mapped[str] = _id()
    compute_id: Mapped[str | None] = mapped_column(sa.String(36))
    status: Mapped[str] = mapped_column(sa.String(36), nullable=False, index=True)
    load_balancer_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("load_balancer.id", ondelete="SET NULL"), index=True)
    lb_network_ip: Mapped[str | None] = mapped_column(sa.String(64))
    vrrp_ip: Mapped[str | None] = mapped_column(sa.String(64))
    ha_ip: Mapped[str | None] = mapped_column(sa.String(64))
    vrrp_port_id: Mapped[str | None] = mapped_column(sa.String(36))
    ha_port_id: Mapped[str | None] = mapped_column(sa.String(36))
    role: Mapped[str | None] = mapped_column(sa.String(36))
    cert_expiration: Mapped[datetime | None] = mapped_column(DateTime)
    cert_busy: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    # A config push skipped it (FAILOVER_STOPPED): re-push once it is heard from again.
    config_stale: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False,
                                               server_default=sa.false())
    vrrp_interface: Mapped[str | None] = mapped_column(sa.String(16))
    vrrp_id: Mapped[int | None] = mapped_column(sa.Integer)
    vrrp_priority: Mapped[int | None] = mapped_column(sa.Integer)
    cached_zone: Mapped[str | None] = mapped_column(sa.String(255))
    image_id: Mapped[str | None] = mapped_column(sa.String(36))
    compute_flavor: Mapped[str | None] = mapped_column(sa.String(255))

    load_balancer: Mapped[LoadBalancer | None] = relationship(back_populates="amphorae")


class AmphoraHealth(Base):
    __tablename__ = "amphora_health"
    amphora_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    last_update: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    busy: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    # Highest heartbeat sequence number accepted (per-amphora mode): the replay guard's memory.
    last_seq: Mapped[int | None] = mapped_column(sa.BigInteger)


class ListenerStatistics(Base):
    __tablename__ = "listener_statistics"
    listener_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    amphora_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    bytes_in: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    bytes_out: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    active_connections: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    total_connections: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    request_errors: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)


class VrrpGroup(Base):
    __tablename__ = "vrrp_group"
    load_balancer_id: Mapped[str] = mapped_column(
        sa.ForeignKey("load_balancer.id", ondelete="CASCADE"), primary_key=True)
    vrrp_group_name: Mapped[str | None] = mapped_column(sa.String(36))
    vrrp_auth_type: Mapped[str | None] = mapped_column(sa.String(16))
    vrrp_auth_pass: Mapped[str | None] = mapped_column(sa.String(36))
    advert_int: Mapped[float | None] = mapped_column(sa.Float)


class Quotas(Base):
    """Per-project limits; NULL means "use the configured default". Usage is always counted
    from live rows, so it never drifts."""

    __tablename__ = "quotas"
    project_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    load_balancer: Mapped[int | None] = mapped_column(sa.Integer)
    listener: Mapped[int | None] = mapped_column(sa.Integer)
    pool: Mapped[int | None] = mapped_column(sa.Integer)
    health_monitor: Mapped[int | None] = mapped_column(sa.Integer)
    member: Mapped[int | None] = mapped_column(sa.Integer)
    l7policy: Mapped[int | None] = mapped_column(sa.Integer)
    l7rule: Mapped[int | None] = mapped_column(sa.Integer)


class FlavorProfile(Base):
    __tablename__ = "flavor_profile"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    provider_name: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    flavor_data: Mapped[str] = mapped_column(sa.String(4096), nullable=False)


class Flavor(Base):
    __tablename__ = "flavor"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(sa.String(255), nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(sa.String(255))
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    flavor_profile_id: Mapped[str] = mapped_column(sa.ForeignKey("flavor_profile.id"),
                                                   nullable=False)


class AvailabilityZoneProfile(Base):
    __tablename__ = "availability_zone_profile"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    provider_name: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    availability_zone_data: Mapped[str] = mapped_column(sa.String(4096), nullable=False)


class AvailabilityZone(Base):
    __tablename__ = "availability_zone"
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    description: Mapped[str | None] = mapped_column(sa.String(255))
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    availability_zone_profile_id: Mapped[str] = mapped_column(
        sa.ForeignKey("availability_zone_profile.id"), nullable=False)


class Operation(Base):
    """One accepted change, written in the same transaction as the PENDING_* marks.

    A worker claims it by setting ``owner`` and ``lease_expires_at``; while it works it renews
    the lease and records progress after each step, so a crashed worker's operation is resumed
    where it stopped. ``claim_count`` grows with every claim and fences out a worker that lost
    its lease.
    """

    __tablename__ = "operation"
    __table_args__ = (sa.Index("ix_operation_state_created", "state", "created_at"),)
    id: Mapped[str] = _id()
    kind: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    load_balancer_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    target_type: Mapped[str | None] = mapped_column(sa.String(32))
    target_id: Mapped[str | None] = mapped_column(sa.String(36))
    project_id: Mapped[str | None] = mapped_column(sa.String(36))
    payload: Mapped[dict[str, object]] = mapped_column(sa.JSON, nullable=False)
    state: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    owner: Mapped[str | None] = mapped_column(sa.String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    claim_count: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    progress: Mapped[dict[str, object] | None] = mapped_column(sa.JSON)
    current_step: Mapped[str | None] = mapped_column(sa.String(128))
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class User(TimestampMixin, Base):
    """A user of the http_basic auth strategy."""

    __tablename__ = "user"
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    project_id: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    roles: Mapped[list[str]] = mapped_column(sa.JSON, nullable=False)


class Secret(TimestampMixin, Base):
    """A tenant secret (the Barbican-shaped store for TLS refs). ``payload`` is sealed by
    statera.services.secret_box: the database never holds it in clear."""

    __tablename__ = "secret"
    id: Mapped[str] = _id()
    project_id: Mapped[str] = mapped_column(sa.String(36), nullable=False, index=True)
    creator_id: Mapped[str | None] = mapped_column(sa.String(255))
    name: Mapped[str | None] = mapped_column(sa.String(255))
    secret_type: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    content_type: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    algorithm: Mapped[str | None] = mapped_column(sa.String(255))
    bit_length: Mapped[int | None] = mapped_column(sa.Integer)
    mode: Mapped[str | None] = mapped_column(sa.String(255))
    expiration: Mapped[datetime | None] = mapped_column(DateTime)
    payload: Mapped[bytes] = mapped_column(Blob, nullable=False)


class SecretContainer(TimestampMixin, Base):
    """A Barbican-shaped container: named references to secrets of the same project (a
    ``certificate`` container names its certificate, private_key, intermediates and
    private_key_passphrase)."""

    __tablename__ = "secret_container"
    id: Mapped[str] = _id()
    project_id: Mapped[str] = mapped_column(sa.String(36), nullable=False, index=True)
    creator_id: Mapped[str | None] = mapped_column(sa.String(255))
    name: Mapped[str | None] = mapped_column(sa.String(255))
    type: Mapped[str] = mapped_column(sa.String(16), nullable=False)

    refs: Mapped[list[SecretContainerRef]] = relationship(
        back_populates="container", cascade="all, delete-orphan", lazy="selectin",
        order_by="SecretContainerRef.name")


class SecretContainerRef(Base):
    __tablename__ = "secret_container_ref"
    container_id: Mapped[str] = mapped_column(
        sa.ForeignKey("secret_container.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    secret_id: Mapped[str] = mapped_column(sa.String(36), nullable=False, index=True)

    container: Mapped[SecretContainer] = relationship(back_populates="refs")
