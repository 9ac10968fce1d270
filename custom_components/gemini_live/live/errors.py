"""Typed Live API errors and their classification from close codes."""

from __future__ import annotations

from collections.abc import Mapping
import json
from typing import Any

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_ABNORMAL = 1006
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011


class LiveError(Exception):
    """Base class of every error raised by the Live client.

    ``close_code`` is the WebSocket close code (None when not from a close) and
    ``reason`` the server's text. Neither ever holds a secret.
    """

    def __init__(
        self, message: str, *, close_code: int | None = None, reason: str = ""
    ) -> None:
        """Store the message, close code and server reason."""
        super().__init__(message)
        self.close_code = close_code
        self.reason = reason


class LiveAuthError(LiveError):
    """The credentials were refused (bad API key, bad service account token)."""


class LiveModelNotFoundError(LiveError):
    """The model does not exist or does not support the Live API."""


class LivePermissionError(LiveError):
    """The caller may not use the model or feature."""


class LiveQuotaError(LiveError):
    """Quota, rate limit or spending cap reached."""


class LiveInvalidArgumentError(LiveError):
    """The server (or the client, before sending) rejected a setting."""


class LiveServiceUnavailableError(LiveError):
    """Server-side failure or unexpected close; retrying later may help."""


class LiveConnectionError(LiveError):
    """The connection could not be opened or was lost."""


class LiveTimeoutError(LiveConnectionError):
    """Connecting or the setup handshake timed out."""


class LiveResumptionError(LiveError):
    """The server refused to resume the session (it closed the resumed setup).

    The handle is unknown, expired or unusable: open a fresh session and replay
    the conversation. ``close_code`` and ``reason`` are the server's, and the
    classified close error is the ``__cause__``.
    """

    @classmethod
    def from_error(cls, error: LiveError) -> LiveResumptionError:
        """Wrap the error of the refused setup."""
        return cls(
            f"Resuming the Live session was refused: {error}",
            close_code=error.close_code,
            reason=error.reason,
        )


class InvalidLocationError(LiveError):
    """The Vertex AI location cannot serve the Live API."""


class InvalidServiceAccountError(LiveError):
    """The service-account JSON is unusable."""


# Reason substrings (lower case) per error class, checked in this order.
_REASON_CLASSES: tuple[tuple[type[LiveError], tuple[str, ...]], ...] = (
    (
        LiveAuthError,
        (
            "api key not valid",
            "api_key_invalid",
            "unregistered callers",
            "authentication credential",
            "unauthenticated",
        ),
    ),
    (
        LiveModelNotFoundError,
        (
            "is not found for api version",
            "not supported for bidigeneratecontent",
            "publisher model",
        ),
    ),
    (
        LivePermissionError,
        (
            "permission denied",
            "permission_denied",
            "denied on resource",
            "not implemented, or supported, or enabled",
            "location is not supported",
        ),
    ),
    (LiveQuotaError, ("quota", "exhausted", "spending cap", "rate limit")),
    (LiveInvalidArgumentError, ("invalid argument", "unsupported language code")),
)

_SUMMARIES: dict[type[LiveError], str] = {
    LiveAuthError: "Authentication failed",
    LiveModelNotFoundError: "Model not found or not supported by the Live API",
    LivePermissionError: "Permission denied",
    LiveQuotaError: "Quota exceeded",
    LiveInvalidArgumentError: "Invalid setting",
    LiveServiceUnavailableError: "Live service unavailable",
    LiveConnectionError: "Connection lost",
}

# Google status names (error frames) per class.
_STATUS_CLASSES: dict[str, type[LiveError]] = {
    "UNAUTHENTICATED": LiveAuthError,
    "PERMISSION_DENIED": LivePermissionError,
    "NOT_FOUND": LiveModelNotFoundError,
    "RESOURCE_EXHAUSTED": LiveQuotaError,
    "INVALID_ARGUMENT": LiveInvalidArgumentError,
}

# HTTP-style codes of error frames without a known status or text.
_HTTP_CLASSES: dict[int, type[LiveError]] = {
    400: LiveInvalidArgumentError,
    401: LiveAuthError,
    403: LivePermissionError,
    404: LiveModelNotFoundError,
    429: LiveQuotaError,
}


def _class_from_reason(reason: str) -> type[LiveError] | None:
    text = reason.lower()
    for cls, needles in _REASON_CLASSES:
        if any(needle in text for needle in needles):
            return cls
    return None


def _class_from_code(code: int) -> type[LiveError]:
    if code in (CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_ABNORMAL):
        return LiveConnectionError
    if code == CLOSE_INVALID_PAYLOAD:
        return LiveInvalidArgumentError
    return LiveServiceUnavailableError


def error_from_close(code: int, reason: str) -> LiveError:
    """Map a WebSocket close code and reason text to a typed error.

    Reasons arrive truncated at 123 bytes, so known texts are matched as
    substrings; unknown texts fall back on the close code.
    """
    cls = _class_from_reason(reason) or _class_from_code(code)
    detail = f": {reason}" if reason else ""
    return cls(
        f"{_SUMMARIES[cls]}{detail} (WebSocket close {code})",
        close_code=code,
        reason=reason,
    )


def error_from_http_status(status: int, reason: str = "") -> LiveError:
    """Map an HTTP status refusing the WebSocket upgrade to a typed error.

    The model is named in the setup frame, not the URL, so a 404 means a wrong
    host, path or API version: a connection problem, not a missing model.
    """
    cls: type[LiveError]
    if status in (401, 403):
        cls, hint = LiveAuthError, "credentials refused"
    elif status == 404:
        cls, hint = LiveConnectionError, "endpoint not found; check the base URL"
    elif status == 429:
        cls, hint = LiveQuotaError, "too many requests"
    elif status >= 500:
        cls, hint = LiveServiceUnavailableError, "server error"
    else:
        cls, hint = LiveConnectionError, "upgrade refused"
    return cls(f"WebSocket upgrade failed with HTTP {status}: {hint}", reason=reason)


def error_from_payload(payload: Mapping[str, Any]) -> LiveError:
    """Map an error frame (``{"error": {...}}`` or ``{"code": ...}``) to a typed error."""
    body = payload.get("error", payload)
    if not isinstance(body, Mapping):
        body = {"message": str(body)}
    message = str(body.get("message") or "")
    status = str(body.get("status") or "")
    code = body.get("code")
    cls = (
        _STATUS_CLASSES.get(status)
        or _class_from_reason(message)
        or (_HTTP_CLASSES.get(code) if isinstance(code, int) else None)
        or LiveServiceUnavailableError
    )
    detail = ", ".join(str(part) for part in (code, status, message) if part)
    return cls(f"{_SUMMARIES[cls]}: server error ({detail})", reason=message)


def error_from_response(status: int, body: str) -> LiveError:
    """Map a refused HTTP request (speech synthesis) to a typed error.

    Google's JSON error (``{"error": {code, message, status}}``) is classified
    by its message first (an invalid API key comes as INVALID_ARGUMENT), then
    its status, then the HTTP code. A body that is not Google's error (e.g. a
    404 from a wrong base URL) is a connection problem below 500.
    """
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, Mapping) else None
    cls: type[LiveError]
    if not isinstance(error, Mapping):
        cls = LiveServiceUnavailableError if status >= 500 else LiveConnectionError
        return cls(f"{_SUMMARIES[cls]}: HTTP {status}")
    message = str(error.get("message") or "")
    name = str(error.get("status") or "")
    cls = (
        _class_from_reason(message)
        or _STATUS_CLASSES.get(name)
        or _HTTP_CLASSES.get(status)
        or LiveServiceUnavailableError
    )
    detail = ", ".join(part for part in (name, message) if part)
    return cls(f"{_SUMMARIES[cls]}: HTTP {status} ({detail})", reason=message)
