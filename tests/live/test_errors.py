"""Close-code, HTTP-status and error-frame classification (reference §5)."""

import pytest

from custom_components.gemini_live.live import (
    LiveAuthError,
    LiveConnectionError,
    LiveError,
    LiveInvalidArgumentError,
    LiveModelNotFoundError,
    LivePermissionError,
    LiveQuotaError,
    LiveServiceUnavailableError,
    error_from_close,
)
from custom_components.gemini_live.live.errors import (
    error_from_http_status,
    error_from_payload,
)


def truncated(reason: str) -> str:
    """Cut a reason to 123 bytes, as the server does."""
    return reason.encode()[:123].decode(errors="ignore")


# Every row of the reference's close-code table (reasons as production sends them).
CLOSE_TABLE = [
    (
        1008,
        (
            "Request is missing required authentication credential. Expected OAuth 2 "
            "access token, login cookie or other valid authentication credential."
        ),
        LiveAuthError,
    ),
    (1007, "API key not valid. Please pass a valid API key.", LiveAuthError),
    (
        1008,
        (
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to "
            "call this API."
        ),
        LiveAuthError,
    ),
    (
        1008,
        (
            "Request had invalid authentication credentials. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential."
        ),
        LiveAuthError,
    ),
    (
        1008,
        (
            "models/gemini-live-2.5-flash-native-audio is not found for API version "
            "v1beta, or is not supported for bidiGenerateContent. Call ListModels to see"
        ),
        LiveModelNotFoundError,
    ),
    (
        1008,
        (
            "models/x is not found for API version v1alpha, or is not supported for "
            "bidiGenerateContent. Call"
        ),
        LiveModelNotFoundError,
    ),
    (1007, "Request contains an invalid argument.", LiveInvalidArgumentError),
    (1008, "Unsupported language code", LiveInvalidArgumentError),
    (
        1011,
        "You exceeded your current quota, please check your plan and billing details.",
        LiveQuotaError,
    ),
    (1011, "Resource has been exhausted (e.g. check quota).", LiveQuotaError),
    (
        1011,
        (
            "Your project has exceeded its monthly spending cap. Please go to AI Studio "
            "at https://ai.studio/spend"
        ),
        LiveQuotaError,
    ),
    (1011, "Quota exceeded. Please retry later.", LiveQuotaError),
    (1011, "Internal error encountered.", LiveServiceUnavailableError),
    (1011, "Internal error occurred.", LiveServiceUnavailableError),
    (1011, "The service is currently unavailable.", LiveServiceUnavailableError),
    (
        1011,
        "Deadline expired before operation could complete.",
        LiveServiceUnavailableError,
    ),
    (
        1011,
        "Thread was cancelled when writing StartStep status to channel",
        LiveServiceUnavailableError,
    ),
    (
        1008,
        (
            "Connection aborted because the client failed to close the connection after "
            "receiving a GoAway signal once the session duration limit was reached."
        ),
        LiveServiceUnavailableError,
    ),
    (1011, "", LiveServiceUnavailableError),
    (
        1008,
        "Operation is not implemented, or supported, or enabled.",
        LivePermissionError,
    ),
    (1008, "Permission denied on resource project foo.", LivePermissionError),
    (
        1008,
        (
            "Permission 'aiplatform.endpoints.predict' denied on resource "
            "'//aiplatform.googleapis.com/projects/p' (or it may not exist)."
        ),
        LivePermissionError,
    ),
    (
        1008,
        (
            "Publisher Model `projects/p/locations/global/publishers/google/models/m` "
            "was not found or your project does not have access to it."
        ),
        LiveModelNotFoundError,
    ),
]


@pytest.mark.parametrize(("code", "reason", "expected"), CLOSE_TABLE)
def test_close_table(code: int, reason: str, expected: type[LiveError]) -> None:
    reason = truncated(reason)
    error = error_from_close(code, reason)
    assert type(error) is expected
    assert error.close_code == code
    assert error.reason == reason
    assert str(code) in str(error)
    assert reason in str(error)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (1000, LiveConnectionError),
        (1001, LiveConnectionError),
        (1006, LiveConnectionError),
        (1007, LiveInvalidArgumentError),
        (1008, LiveServiceUnavailableError),
        (1011, LiveServiceUnavailableError),
        (1013, LiveServiceUnavailableError),
    ],
)
def test_unknown_reason_falls_back_on_code(
    code: int, expected: type[LiveError]
) -> None:
    error = error_from_close(code, "something new")
    assert type(error) is expected
    assert str(error).endswith(f"(WebSocket close {code})")


def test_reason_matching_ignores_case() -> None:
    assert isinstance(error_from_close(1007, "API KEY NOT VALID"), LiveAuthError)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, LiveAuthError),
        (403, LiveAuthError),
        (404, LiveConnectionError),
        (400, LiveConnectionError),
        (429, LiveQuotaError),
        (500, LiveServiceUnavailableError),
        (503, LiveServiceUnavailableError),
    ],
)
def test_http_status(status: int, expected: type[LiveError]) -> None:
    error = error_from_http_status(status, "Reason")
    assert type(error) is expected
    assert f"HTTP {status}" in str(error)
    assert error.close_code is None
    assert error.reason == "Reason"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"error": {"code": 401, "message": "x", "status": "UNAUTHENTICATED"}},
            LiveAuthError,
        ),
        ({"error": {"code": 7, "status": "PERMISSION_DENIED"}}, LivePermissionError),
        ({"error": {"code": 5, "status": "NOT_FOUND"}}, LiveModelNotFoundError),
        ({"error": {"code": 8, "status": "RESOURCE_EXHAUSTED"}}, LiveQuotaError),
        ({"error": {"status": "INVALID_ARGUMENT"}}, LiveInvalidArgumentError),
        (
            {"error": {"code": 500, "message": "Internal error encountered."}},
            LiveServiceUnavailableError,
        ),
        ({"error": {"message": "API key not valid."}}, LiveAuthError),
        ({"code": 429, "message": "slow down"}, LiveQuotaError),
        ({"code": 404}, LiveModelNotFoundError),
        ({"code": "weird"}, LiveServiceUnavailableError),
        ({"error": "plain text"}, LiveServiceUnavailableError),
    ],
)
def test_error_payload(payload: dict[str, object], expected: type[LiveError]) -> None:
    error = error_from_payload(payload)
    assert type(error) is expected
    assert "server error" in str(error)
