from __future__ import annotations

import uuid
from dataclasses import dataclass

from referral.models.enums import Role


@dataclass(frozen=True)
class Actor:
    """Who is acting, as the services see it: the authenticated user plus where the call came from."""

    user_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    role: Role | None
    provider_id: uuid.UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None

    @classmethod
    def operator(cls) -> Actor:
        """The command line, run by whoever operates the server."""
        return cls(user_id=None, organization_id=None, role=None)

    @property
    def is_platform_admin(self) -> bool:
        return self.role == Role.ADMIN

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles
