"""One root for the errors the matcher raises on purpose, in the kinds a caller must tell apart.

A caller (the CLI, the Matcher page, a DAG task's log reader) catches :class:`MatcherError` and
reads what happened from its kind: the input it gave cannot be used (:class:`BadInput`, a 4xx),
what it asked for does not exist (:class:`NotFound`, 404), it lost a race or the state moved under
it (:class:`Conflict`, 409), or S3 stayed unreachable or failing past the retries
(:class:`StorageUnavailable`, 503: try again later, nothing is wrong with the request). ``status``
is the HTTP status the page answers with. Each concrete error also keeps the built-in base it had
(``ValueError``, ``LookupError``, ``FileNotFoundError``, ...), so code that caught those still does.
"""

from __future__ import annotations


class MatcherError(Exception):
    """Root of every error the matcher raises on purpose."""

    status = 500


class BadInput(MatcherError):
    """What the caller gave (a file, a flag, a name, a request) cannot be used as it is."""

    status = 400


class NotFound(MatcherError):
    """What the caller asked for (an object, a version, a report, a CV) does not exist."""

    status = 404


class Conflict(MatcherError):
    """The state moved under the caller: a write lost its race, a version exists, a corpus went stale."""

    status = 409


class StorageUnavailable(MatcherError):
    """S3 stayed unreachable, overloaded or failing (5xx) past the retries: the request may be repeated."""

    status = 503
