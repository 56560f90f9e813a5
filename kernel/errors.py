"""The kernel's refusals: ``aion.errors`` kinds whose ``code`` is the API's problem type slug.

``kernel.services`` raises these and nothing HTTP; ``aion.problems`` maps each kind to its status
(docs/architecture.md, "Errors: one convention"). The codes are part of the API: tests pin them.
"""

from __future__ import annotations

from aion import errors


class ProposalNotFound(errors.NotFound):
    """No such proposal for this tenant (another tenant's id is indistinguishable from none)."""


class ProposalChanged(errors.StaleVersion):
    """The caller's ETag (If-Match, the Console's hidden field) is not the proposal's current one."""

    code = "stale-etag"


class InvalidTransition(errors.Conflict):
    """The proposal's state does not allow this transition."""

    code = "invalid-transition"


class SeparationOfDuties(errors.NotAllowed):
    """The proposer approving their own proposal."""

    code = "separation-of-duties"


class AlreadyApproved(errors.Conflict):
    """This approver has already approved: each approver counts once."""

    code = "already-approved"


class BreakglassDisabled(errors.NotAllowed):
    """The kernel policy turns break-glass off."""

    code = "breakglass-disabled"


class PolicyUnavailable(errors.Unavailable):
    """No valid guardrail policy is loaded (/readyz shows ``kernel_policy: down``)."""

    code = "policy-unavailable"


class PolicyViolation(errors.InvalidInput):
    """The proposal breaks the guardrail policy; ``errors`` names each field."""

    code = "policy-violation"


class ConfigDrift(errors.Conflict):
    """A ``from`` no longer equals the current value (``drifted_keys`` says which)."""

    code = "drift"


class Superseded(errors.Conflict):
    """A later revision was applied on top of this proposal's: roll that one back first."""

    code = "superseded"
