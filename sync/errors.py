"""Why a sync run stops early.

::

    SyncError                    a run ended before its plan was complete
    ├── OutOfBudget              subrequests or time ran out; the next run goes on
    ├── FetchError               Split could not be reached (after retries)
    ├── AuthError                401/403: the SDK key is wrong or client-side
    ├── RequestError             another 4xx, such as 414 for too many flag sets
    │   └── SpecRejected         400 to spec 1.3 from a proxy that predates it
    └── BadResponse              an answer that is not what Split's API sends

Only ``OutOfBudget`` is not a failure: the run stages what it has and the next
run continues. Every other error fails the run; the live plan is untouched.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadResponse",
    "FetchError",
    "OutOfBudget",
    "RequestError",
    "SpecRejected",
    "SyncError",
]


class SyncError(Exception):
    """A run could not finish its plan."""


class OutOfBudget(SyncError):
    """The run's subrequest or time budget is spent."""


class FetchError(SyncError):
    """Network errors, timeouts, 5xx or 429 outlasted the retries."""


class AuthError(SyncError):
    """Split refused the SDK key."""


class RequestError(SyncError):
    """Split refused the request itself."""


class SpecRejected(RequestError):
    """A proxy answered 400 to ``s=1.3``: it only speaks spec 1.1."""


class BadResponse(SyncError):
    """An answer was malformed or wrongly typed; nothing of it was used."""
