"""Domain errors: what a service raises when it refuses, in the service's own words.

Services never know HTTP. They raise one of these kinds (or an app's subclass naming its
reason, with a stable ``code``); ``aion.problems`` maps the kind to a status and problem JSON,
once, for the API, and the Console shows ``detail`` (and ``errors``) on its pages.

A leaf module: it imports nothing of ours, so every layer may raise these.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal with a stable machine code, a human detail, optional field errors and extras.

    ``code`` is the problem type slug (``urn:aion:problem:<code>``); a subclass sets its own.
    ``errors`` maps a dotted field path to messages; ``extra`` members are added to the body.
    ``retry_after`` (seconds) is for ``Unavailable`` and ``RateLimited``.
    """

    code: ClassVar[str] = "invalid"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        title: str | None = None,
        errors: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code  # type: ignore[misc]  # an instance may name a finer reason than its class
        self.title = title
        self.errors = errors
        self.retry_after = retry_after
        self.extra = extra


class InvalidInput(DomainError):
    """The input breaks a rule (a field, a document, a policy): the caller must change it."""

    code = "validation-error"


class Rejected(DomainError):
    """The input is well-formed but refused on its merits (a bad signature, an unloadable model)."""

    code = "unprocessable"


class NotFound(DomainError):
    """The thing does not exist for this tenant (never says whether it exists for another)."""

    code = "not-found"


class NotAllowed(DomainError):
    """This actor may not do this to this thing (self-approval, a pool outside its credential)."""

    code = "forbidden"


class Conflict(DomainError):
    """The thing's state does not allow it now (already applied, a version taken)."""

    code = "conflict"


class Expired(DomainError):
    """The thing existed but its time is over (an expired proposal, an abandoned upload)."""

    code = "gone"


class StaleVersion(DomainError):
    """The caller's version (If-Match) is not the current one: re-read and retry."""

    code = "precondition-failed"


class VersionRequired(DomainError):
    """The change needs the caller's version (If-Match) and none was given."""

    code = "precondition-required"


class TooLarge(DomainError):
    """The input is over a configured size limit."""

    code = "payload-too-large"


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` says when to try again."""

    code = "rate-limited"


class Unavailable(DomainError):
    """A dependency is down or busy; ``retry_after`` says when to try again."""

    code = "unavailable"


class Unauthenticated(DomainError):
    """The caller's credential (a key, a signature) could not be verified; the detail reveals nothing more."""

    code = "unauthenticated"
