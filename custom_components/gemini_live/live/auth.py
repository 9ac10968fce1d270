"""Credentials: API key headers and service-account bearer tokens."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import json
import logging
import time
from typing import Any, Protocol

import aiohttp
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
import jwt

from .errors import (
    InvalidServiceAccountError,
    LiveAuthError,
    LiveConnectionError,
    LiveError,
    LiveServiceUnavailableError,
)

_LOGGER = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
REFRESH_MARGIN = 300


class Credentials(Protocol):
    """Something that produces the authentication headers of a connection."""

    async def headers(self, http: aiohttp.ClientSession) -> dict[str, str]:
        """Return the headers to send with the WebSocket upgrade."""
        ...


class ApiKeyCredentials:
    """A Gemini API key, sent only in the ``x-goog-api-key`` header."""

    def __init__(self, api_key: str) -> None:
        """Keep the key."""
        self._api_key = api_key

    def __repr__(self) -> str:
        """Hide the key."""
        return "ApiKeyCredentials(api_key=***)"

    async def headers(self, http: aiohttp.ClientSession) -> dict[str, str]:
        """Return the API key header."""
        return {"x-goog-api-key": self._api_key}


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The fields of a Google service-account JSON key that we use."""

    project_id: str
    client_email: str
    private_key: str = field(repr=False)
    token_uri: str = DEFAULT_TOKEN_URI
    private_key_id: str | None = None

    @classmethod
    def from_json(cls, text: str) -> ServiceAccount:
        """Parse and check a service-account JSON key.

        Raises ``InvalidServiceAccountError`` whose text never quotes the key.
        """
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidServiceAccountError(
                "The service account key is not valid JSON"
            ) from None
        if not isinstance(data, dict):
            raise InvalidServiceAccountError("The service account key is not an object")
        if data.get("type") != "service_account":
            raise InvalidServiceAccountError(
                'The key is not a service account key (expected "type":'
                ' "service_account")'
            )
        missing = [
            name
            for name in ("project_id", "client_email", "private_key")
            if not isinstance(data.get(name), str) or not data[name].strip()
        ]
        if missing:
            raise InvalidServiceAccountError(
                f"The service account key lacks {', '.join(missing)}"
            )
        load_private_key(data["private_key"])
        token_uri = data.get("token_uri")
        key_id = data.get("private_key_id")
        return cls(
            project_id=data["project_id"],
            client_email=data["client_email"],
            private_key=data["private_key"],
            token_uri=token_uri if isinstance(token_uri, str) else DEFAULT_TOKEN_URI,
            private_key_id=key_id if isinstance(key_id, str) and key_id else None,
        )


def load_private_key(pem: str) -> RSAPrivateKey:
    """Load an RSA private key (CPU-heavy: tens of milliseconds)."""
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except ValueError, TypeError:
        raise InvalidServiceAccountError(
            "The service account private key cannot be loaded"
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise InvalidServiceAccountError(
            "The service account private key is not an RSA key"
        )
    return key


class ServiceAccountCredentials:
    """OAuth2 bearer tokens minted from a service account (JWT-bearer grant)."""

    def __init__(self, account: ServiceAccount) -> None:
        """Keep the account; tokens are fetched on demand and cached."""
        self.account = account
        self._token: str | None = None
        self._expires_at = 0.0
        self._key: RSAPrivateKey | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        """Show the account, never the key or token."""
        return f"ServiceAccountCredentials({self.account.client_email!r})"

    async def headers(self, http: aiohttp.ClientSession) -> dict[str, str]:
        """Return a bearer header, refreshing the token 5 minutes before expiry."""
        async with self._lock:
            if self._token is None or time.time() >= self._expires_at - REFRESH_MARGIN:
                self._token, lifetime = await self._fetch_token(http)
                self._expires_at = time.time() + lifetime
        return {"Authorization": f"Bearer {self._token}"}

    async def _assertion(self) -> str:
        """Sign the JWT-bearer assertion (the key is loaded once, off the loop)."""
        if self._key is None:
            self._key = await asyncio.get_running_loop().run_in_executor(
                None, load_private_key, self.account.private_key
            )
        now = int(time.time())
        claims = {
            "iss": self.account.client_email,
            "scope": SCOPE,
            "aud": self.account.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        headers = (
            {"kid": self.account.private_key_id}
            if self.account.private_key_id
            else None
        )
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    async def _fetch_token(self, http: aiohttp.ClientSession) -> tuple[str, float]:
        """Exchange a signed assertion for an access token and its lifetime."""
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": await self._assertion()}
        _LOGGER.debug("Requesting an access token for %s", self.account.client_email)
        try:
            async with http.post(self.account.token_uri, data=form) as resp:
                status = resp.status
                text = await resp.text()
        except (aiohttp.ClientError, OSError) as err:
            raise LiveConnectionError(
                f"Cannot reach the token endpoint: {type(err).__name__}"
            ) from None
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = None
        if status >= 400:
            raise _token_error(status, body)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise LiveServiceUnavailableError("The token endpoint returned no token")
        lifetime = body.get("expires_in", ASSERTION_LIFETIME)
        if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool):
            lifetime = ASSERTION_LIFETIME
        return token, float(lifetime)


def _token_error(status: int, body: Any) -> LiveError:
    """Describe a token endpoint refusal by its OAuth error fields."""
    detail = ""
    if isinstance(body, dict):
        detail = ": ".join(
            str(body[key]) for key in ("error", "error_description") if body.get(key)
        )
    text = f"The token endpoint refused the service account (HTTP {status})"
    if detail:
        text += f": {detail}"
    if status >= 500:
        return LiveServiceUnavailableError(text, reason=detail)
    return LiveAuthError(text, reason=detail)
