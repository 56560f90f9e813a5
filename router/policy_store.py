"""Which policy is active, read-only: the stored revision, and this process's parsed copy of it.

``active_policy()`` is what every decision uses: it compares the active revision number in the
database (one primary-key read) with the one this process has cached, at most every
``AION_ROUTER_POLICY_CHECK_SECONDS``, so a reload is seen by every web and worker process within
that bound (task execution checks on every task).

Nothing here writes. Before any revision is stored (a fresh database), decisions use the policy
file as read, in memory, as revision 0; the file becomes revision 1 only through an explicit write:
``manage.py router_policy bootstrap`` (the migrate job and ``scripts/dev.py run`` call it) or a reload.
Storing revisions is ``router.services``; parsing is ``router.policy``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from django.conf import settings
from django.db.models import Subquery

from router.models import PolicyRevision, PolicyState
from router.policy import Policy, parse_policy, read_policy_file

# Each process keeps the parsed active policy and when it last compared its revision with the
# database. Decisions re-check at most every AION_ROUTER_POLICY_CHECK_SECONDS (one primary-key
# read), so a reload or rollback made by another process takes effect here within that bound; the
# process that activates a revision forgets its check at once (and again on commit), and callers
# that must see the revision of this instant (task execution) pass ``max_age_seconds=0``.

_lock = threading.Lock()
_cached: tuple[Policy, float] | None = None  # (policy, monotonic time of the last database check)
_file: tuple[str, Policy] | None = None  # (sha256, policy): the unstored file, parsed again only when it changes


def active_revision_number() -> int:
    """The active revision number from the database (0 = none stored yet): the per-request check."""
    number = PolicyState.objects.filter(pk=1).values_list("active_number", flat=True).first()
    return int(number or 0)


def active_number_subquery() -> Any:
    """The active revision number as a subquery, to read it with another row in one round trip."""
    return Subquery(PolicyState.objects.filter(pk=1).values("active_number")[:1])


def file_policy() -> Policy:
    """The policy file as revision 0 (nothing stored yet); raises PolicyInvalid like a reload would."""
    global _file
    content, _ = read_policy_file()
    sha = hashlib.sha256(content.encode()).hexdigest()
    known = _file
    if known is not None and known[0] == sha:
        return known[1]
    policy = parse_policy(content, revision=0, sha256=sha)
    with _lock:
        _file = (sha, policy)
    return policy


def active_policy(*, max_age_seconds: float | None = None, active_number: int | None = None) -> Policy:
    """The active Policy; the database is asked only when the last check is older than the bound.

    It is re-parsed only when the revision number in the database changed. ACTIVE_NUMBER is the
    active revision number when the caller has just read it (in the same query as its own row).
    With no stored revision it is the file (``file_policy``), never stored from here.
    """
    global _cached
    bound = float(settings.AION_ROUTER_POLICY_CHECK_SECONDS) if max_age_seconds is None else max_age_seconds
    cached = _cached
    now = time.monotonic()
    if active_number is None and cached is not None and bound > 0 and now - cached[1] < bound:
        return cached[0]
    number = active_revision_number() if active_number is None else active_number
    if cached is not None and cached[0].revision == number and number:
        _cached = (cached[0], now)
        return cached[0]
    if number:
        revision = PolicyRevision.objects.get(number=number)
        policy = parse_policy(revision.content, revision=revision.number, sha256=revision.sha256)
    else:
        policy = file_policy()
    with _lock:
        _cached = (policy, now)
    return policy


def policy_changed() -> None:
    """This process activated a revision: its next decision checks the database (the policy stays parsed)."""
    global _cached
    with _lock:
        if _cached is not None:
            _cached = (_cached[0], float("-inf"))


def forget_cached_policy() -> None:
    global _cached, _file
    with _lock:
        _cached = None
        _file = None
