"""Octavia's default policy (Keystone default roles, plus the legacy load-balancer_* roles of
the advanced RBAC policy), as one table: (resource, action) -> base rule.

A rule is a function of the caller and the target's project. ``admin`` passes everything.
"""

from __future__ import annotations

from collections.abc import Callable

from statera.domain.errors import PolicyForbidden
from statera.services.context import RequestContext

READER_ROLES = frozenset({"reader", "member", "load-balancer_observer", "load-balancer_member"})
WRITER_ROLES = frozenset({"member", "load-balancer_member"})
ADMIN_ROLES = frozenset({"admin", "load-balancer_admin"})
GLOBAL_READER_ROLES = frozenset({"load-balancer_global_observer"})
QUOTA_ADMIN_ROLES = frozenset({"load-balancer_quota_admin"})
# Every role the policy knows (users of http_basic may only be given these).
KNOWN_ROLES = (READER_ROLES | WRITER_ROLES | ADMIN_ROLES | GLOBAL_READER_ROLES
               | QUOTA_ADMIN_ROLES | {"service"})


def _is_admin(ctx: RequestContext) -> bool:
    return ctx.is_admin or bool(ctx.roles & ADMIN_ROLES)


def _owner(ctx: RequestContext, project_id: str | None) -> bool:
    return ctx.project_id is not None and (project_id is None or project_id == ctx.project_id)


def read(ctx: RequestContext, project_id: str | None) -> bool:
    return (_is_admin(ctx) or bool(ctx.roles & GLOBAL_READER_ROLES)
            or (bool(ctx.roles & READER_ROLES) and _owner(ctx, project_id)))


def read_own(ctx: RequestContext, project_id: str | None) -> bool:
    """Reads of secrets: the owning project's readers and admins, no global observer."""
    return _is_admin(ctx) or (bool(ctx.roles & READER_ROLES) and _owner(ctx, project_id))


def read_global(ctx: RequestContext, project_id: str | None) -> bool:
    return _is_admin(ctx) or bool(ctx.roles & GLOBAL_READER_ROLES)


def write(ctx: RequestContext, project_id: str | None) -> bool:
    return _is_admin(ctx) or (bool(ctx.roles & WRITER_ROLES) and _owner(ctx, project_id))


def read_quota(ctx: RequestContext, project_id: str | None) -> bool:
    return (_is_admin(ctx) or bool(ctx.roles & (GLOBAL_READER_ROLES | QUOTA_ADMIN_ROLES))
            or (bool(ctx.roles & READER_ROLES) and _owner(ctx, project_id)))


def read_quota_global(ctx: RequestContext, project_id: str | None) -> bool:
    return _is_admin(ctx) or bool(ctx.roles & (GLOBAL_READER_ROLES | QUOTA_ADMIN_ROLES))


def write_quota(ctx: RequestContext, project_id: str | None) -> bool:
    return _is_admin(ctx) or bool(ctx.roles & QUOTA_ADMIN_ROLES)


def admin(ctx: RequestContext, project_id: str | None) -> bool:
    return _is_admin(ctx)


def member_list(ctx: RequestContext, project_id: str | None) -> bool:
    return read(ctx, project_id) or "service" in ctx.roles


def any_reader(ctx: RequestContext, project_id: str | None) -> bool:
    """Read of project-less resources (flavors, AZs, providers): any reader role."""
    return (_is_admin(ctx) or (bool(ctx.roles & (GLOBAL_READER_ROLES | READER_ROLES))
            and ctx.project_id is not None))


Rule = Callable[[RequestContext, str | None], bool]

_TENANT_RESOURCES = ("loadbalancer", "listener", "pool", "member", "healthmonitor",
                     "l7policy", "l7rule")

POLICY: dict[str, Rule] = {}
for _res in _TENANT_RESOURCES:
    POLICY[f"{_res}:get_all"] = read
    POLICY[f"{_res}:get_all-global"] = read_global
    POLICY[f"{_res}:get_one"] = read
    POLICY[f"{_res}:post"] = write
    POLICY[f"{_res}:put"] = write
    POLICY[f"{_res}:delete"] = write
POLICY["member:get_all"] = member_list
POLICY.update({
    "loadbalancer:get_stats": read,
    "loadbalancer:get_status": read,
    "loadbalancer:put_failover": admin,
    "listener:get_stats": read,
    "quota:get_all": read_quota,
    "quota:get_all-global": read_quota_global,
    "quota:get_one": read_quota,
    "quota:put": write_quota,
    "quota:delete": write_quota,
    "quota:get_defaults": read_quota,
    "provider:get_all": any_reader,
    "provider-flavor:get_all": admin,
    "provider-availability-zone:get_all": admin,
    "flavor:get_all": any_reader,
    "flavor:get_one": any_reader,
    "flavor:post": admin,
    "flavor:put": admin,
    "flavor:delete": admin,
    "flavor-profile:get_all": admin,
    "flavor-profile:get_one": admin,
    "flavor-profile:post": admin,
    "flavor-profile:put": admin,
    "flavor-profile:delete": admin,
    "availability-zone:get_all": any_reader,
    "availability-zone:get_one": any_reader,
    "availability-zone:post": admin,
    "availability-zone:put": admin,
    "availability-zone:delete": admin,
    "availability-zone-profile:get_all": admin,
    "availability-zone-profile:get_one": admin,
    "availability-zone-profile:post": admin,
    "availability-zone-profile:put": admin,
    "availability-zone-profile:delete": admin,
    "amphora:get_all": admin,
    "amphora:get_one": admin,
    "amphora:get_stats": admin,
    "amphora:put_config": admin,
    "amphora:put_failover": admin,
    "amphora:delete": admin,
    "network:get_all": any_reader,
    "secret:get_all": read_own,
    "secret:get_one": read_own,
    "secret:post": write,
    "secret:delete": write,
})


def allowed(ctx: RequestContext, action: str, project_id: str | None = None) -> bool:
    if ctx.noauth:
        return True
    return POLICY[action](ctx, project_id)


def enforce(ctx: RequestContext, action: str, project_id: str | None = None) -> None:
    """Raise 403 unless the caller may perform ``action`` on an object of ``project_id``."""
    if not allowed(ctx, action, project_id):
        raise PolicyForbidden()


def sees_all_projects(ctx: RequestContext, resource: str) -> bool:
    return allowed(ctx, f"{resource}:get_all-global")
