"""What a Live error means to a user: one translation key per kind of error.

The keys are the config flow's form errors and the translation keys of the
exceptions raised at setup, so both say the same thing.
"""

from __future__ import annotations

from typing import Final

from .live import (
    InvalidLocationError,
    InvalidServiceAccountError,
    LiveAuthError,
    LiveError,
    LiveInvalidArgumentError,
    LiveModelNotFoundError,
    LivePermissionError,
    LiveQuotaError,
)

_ERROR_KEYS: Final[tuple[tuple[type[LiveError], str], ...]] = (
    (InvalidServiceAccountError, "invalid_service_account"),
    (InvalidLocationError, "invalid_location"),
    (LiveModelNotFoundError, "model_not_found"),
    (LiveInvalidArgumentError, "model_not_supported"),
    (LiveAuthError, "invalid_auth"),
    (LivePermissionError, "permission_denied"),
    (LiveQuotaError, "quota_exceeded"),
)

CREDENTIAL_ERRORS: Final = frozenset(
    {"invalid_auth", "invalid_service_account", "permission_denied"}
)
"""Errors that new credentials fix (reauthentication)."""

TRANSIENT_ERRORS: Final = frozenset({"cannot_connect", "quota_exceeded"})
"""Errors that go away by themselves (retry later)."""


def error_key(err: LiveError) -> str:
    """Return the translation key for a Live error.

    Connection, timeout and service errors are all `cannot_connect`.
    """
    for error_type, key in _ERROR_KEYS:
        if isinstance(err, error_type):
            return key
    return "cannot_connect"
