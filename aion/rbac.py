"""Roles and the one permission check every API view and Console page goes through.

A view declares what it needs with ``required_role`` (one role for every
method) or ``required_roles`` (a dict keyed by DRF action or HTTP method).
A view that declares nothing is refused (fail closed), and a test walks the
URLconf to make sure none is left undeclared. ``auditor`` may read
everything; writes always need the named role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from aion.auth.denials import record_denied
from aion.auth.principal import principal_for_user
from aion.roles import ALL_ROLES, AUTHENTICATED, PUBLIC, Role

__all__ = [
    "ALL_ROLES",
    "AUTHENTICATED",
    "PUBLIC",
    "Role",
    "RolePermission",
    "RoleRequiredMixin",
    "RoleRequirementMissing",
    "principal_allows",
    "required_role_for",
    "role_required",
]  # the role names live in aion.roles; they stay importable from here


class RoleRequirementMissing(Exception):
    """A view reached the permission check without declaring its role."""


def required_role_for(view: Any, request: Any) -> str | None:
    mapping = getattr(view, "required_roles", None)
    if mapping:
        action = getattr(view, "action", None)
        for key in (action, request.method, "*"):
            if key and key in mapping:
                return str(mapping[key])
    role = getattr(view, "required_role", None)
    return str(role) if role else None


def principal_allows(principal: Any, role: str, method: str) -> bool:
    if role == PUBLIC:
        return True
    if principal is None or not getattr(principal, "is_authenticated", False):
        return False
    if role == AUTHENTICATED:
        return True
    roles: Iterable[str] = getattr(principal, "roles", ())
    if role in roles:
        return True
    # auditor: read-only access to everything.
    return method in SAFE_METHODS and Role.AUDITOR.value in roles


class RolePermission(BasePermission):
    """DRF default permission: 401 without a credential, 403 without the declared role."""

    def has_permission(self, request: Any, view: Any) -> bool:
        # The method check comes first: a method the route does not serve (TRACE, or PUT on a list) is a
        # 405 with Allow (DRF's default response headers), not a 403 that hides what the route offers.
        method = (request.method or "").lower()
        if method not in view.http_method_names or not hasattr(view, method):
            raise exceptions.MethodNotAllowed(request.method)
        role = required_role_for(view, request)
        if role is None:
            raise exceptions.PermissionDenied(f"{type(view).__name__} declares no required role; refusing.")
        if role == PUBLIC:
            return True
        if request.user is None or not getattr(request.user, "is_authenticated", False):
            raise exceptions.NotAuthenticated()
        if not principal_allows(request.user, role, request.method):
            if request.method not in SAFE_METHODS:
                # A refused write passes the rate limiter first (DRF would throttle only allowed requests),
                # then leaves a throttled access.denied audit record.
                check_throttles = getattr(view, "check_throttles", None)
                if check_throttles is not None:
                    check_throttles(request)
                record_denied(request, request.user, "missing_role", required_role=role)
            raise exceptions.PermissionDenied(f"This action requires the role {role!r}.")
        return True


def role_required(*roles: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """For Console (Django) views: login, then any one of ROLES, checked the same way as the API."""
    if not roles:
        raise RoleRequirementMissing("role_required needs at least one role")
    names = tuple(str(role) for role in roles)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            principal = principal_for_user(request.user)
            if not any(principal_allows(principal, name, request.method or "GET") for name in names):
                record_denied(request, principal, "missing_role", required_role=" | ".join(names))
                wanted = repr(names[0]) if len(names) == 1 else "one of " + ", ".join(names)
                raise DjangoPermissionDenied(f"This page requires the role {wanted}.")
            request.principal = principal  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        wrapped.required_role = names[0]  # type: ignore[attr-defined]
        wrapped.required_any_of = names  # type: ignore[attr-defined]
        return wrapped

    return decorator


class RoleRequiredMixin:
    """Class-based Console views: ``required_role = Role.X``."""

    required_role: str | None = None

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        view = super().as_view(**initkwargs)  # type: ignore[misc]
        if cls.required_role is None:
            raise RoleRequirementMissing(f"{cls.__name__} declares no required_role")
        return role_required(cls.required_role)(view)
