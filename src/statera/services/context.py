"""Who is calling: built by the API's auth layer, checked by the policy table."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestContext:
    project_id: str | None
    user: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    request_id: str | None = None
    noauth: bool = False

    @classmethod
    def admin(cls, project_id: str | None = None) -> RequestContext:
        return cls(project_id=project_id, user="admin", roles=frozenset({"admin"}),
                   is_admin=True)
