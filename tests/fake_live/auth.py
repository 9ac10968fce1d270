"""Fake Google OAuth2: service accounts, the JWT-bearer token endpoint, tokens.

`TokenAuthority` creates service accounts (fresh RSA keys), serves
`POST /token` (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer) verifying
the RS256 assertion against the public key of the account that signed it, and
checks the bearer tokens it issued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import secrets
import time
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
import jwt

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
MAX_ASSERTION_LIFETIME = 3600
# Google's endpoint also accepts its canonical URLs as "aud" (google-auth always
# signs for the first one, whatever the key file's token_uri says).
GOOGLE_TOKEN_AUDIENCES = (
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
)
_BAD_TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
    "reasonable timeframe. Check your iat and exp values in the JWT claim."
)


@dataclass(slots=True, kw_only=True)
class FakeServiceAccount:
    """A service account the fake token endpoint knows."""

    project_id: str
    client_email: str
    client_id: str
    private_key_id: str
    private_key_pem: str
    public_key: rsa.RSAPublicKey
    disabled: bool = False


@dataclass(slots=True, kw_only=True)
class IssuedToken:
    """An access token handed out by the token endpoint."""

    token: str
    account: FakeServiceAccount
    scope: str
    expires_at: float
    """Wall-clock expiry (time.time() seconds)."""
    revoked: bool = False

    @property
    def valid(self) -> bool:
        """Neither expired nor revoked."""
        return not self.revoked and time.time() < self.expires_at


def _grant_error(error: str, description: str) -> web.Response:
    body = {"error": error, "error_description": description}
    return web.json_response(body, status=400)


@dataclass(slots=True)
class TokenAuthority:
    """Issues service accounts and access tokens; serves the token endpoint."""

    token_uri: str = ""
    """Absolute URL of the token endpoint (set by the server once started)."""
    token_lifetime: float = 3600.0
    """Seconds an access token lives (`expires_in`)."""
    accounts: dict[str, FakeServiceAccount] = field(default_factory=dict)
    """By private_key_id."""
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    grant_requests: list[dict[str, str]] = field(default_factory=list)
    """Every POST to the token endpoint (form fields), in order."""

    def create_account(self, project_id: str) -> FakeServiceAccount:
        """Create a service account with a fresh 2048-bit RSA key."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        name = f"gemini-live-{secrets.token_hex(3)}"
        account = FakeServiceAccount(
            project_id=project_id,
            client_email=f"{name}@{project_id}.iam.gserviceaccount.com",
            client_id=str(secrets.randbelow(10**21)).rjust(21, "1"),
            private_key_id=secrets.token_hex(20),
            private_key_pem=pem,
            public_key=key.public_key(),
        )
        self.accounts[account.private_key_id] = account
        return account

    def account_json(self, account: FakeServiceAccount) -> str:
        """Render the key file Google Cloud would download for `account`."""
        email = account.client_email.replace("@", "%40")
        return json.dumps(
            {
                "type": "service_account",
                "project_id": account.project_id,
                "private_key_id": account.private_key_id,
                "private_key": account.private_key_pem,
                "client_email": account.client_email,
                "client_id": account.client_id,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": self.token_uri,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
                "universe_domain": "googleapis.com",
            },
            indent=2,
        )

    def issue(self, account: FakeServiceAccount, scope: str) -> IssuedToken:
        """Mint an access token for `account`."""
        token = IssuedToken(
            token=f"ya29.fake-{secrets.token_urlsafe(24)}",
            account=account,
            scope=scope,
            expires_at=time.time() + self.token_lifetime,
        )
        self.tokens[token.token] = token
        return token

    def check(self, authorization: str | None) -> IssuedToken | None:
        """Return the valid token of an `Authorization: Bearer …` header, if any."""
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = self.tokens.get(value.strip())
        return token if token is not None and token.valid else None

    def expire_all(self) -> None:
        """Revoke every issued token (the next handshake with one fails)."""
        for token in self.tokens.values():
            token.revoked = True

    async def handle_token(self, request: web.Request) -> web.Response:
        """POST /token: the OAuth2 JWT-bearer grant (RFC 7523)."""
        if request.content_type == "application/json":
            body = await request.json()
            form = {str(k): str(v) for k, v in dict(body).items()}
        else:
            form = {k: str(v) for k, v in (await request.post()).items()}
        self.grant_requests.append(form)
        if form.get("grant_type") != JWT_BEARER:
            return _grant_error(
                "unsupported_grant_type",
                f"Invalid grant_type: {form.get('grant_type', '')}",
            )
        verified = self._verify(form.get("assertion", ""))
        if isinstance(verified, str):
            return _grant_error("invalid_grant", verified)
        account, claims = verified
        if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
            return _grant_error(
                "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        token = self.issue(account, str(claims["scope"]))
        return web.json_response(
            {
                "access_token": token.token,
                "expires_in": int(self.token_lifetime),
                "token_type": "Bearer",
            }
        )

    def _verify(
        self, assertion: str
    ) -> tuple[FakeServiceAccount, dict[str, Any]] | str:
        """Verify the assertion: (account, claims), or Google's error text."""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return "Invalid JWT Signature."
        if header.get("alg") != "RS256":
            return "Invalid JWT Signature."
        if "kid" in header:
            account = self.accounts.get(str(header["kid"]))
        else:  # without "kid" Google tries the issuer's current keys
            account = next(
                (
                    a
                    for a in self.accounts.values()
                    if a.client_email == unverified.get("iss")
                ),
                None,
            )
        if account is None:
            return "Invalid JWT Signature."
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=[self.token_uri, *GOOGLE_TOKEN_AUDIENCES],
                options={"require": ["iss", "aud", "iat", "exp"]},
                leeway=0,
            )
        except jwt.InvalidSignatureError:
            return "Invalid JWT Signature."
        except jwt.InvalidAudienceError:
            return "Invalid JWT: Failed audience check."
        except jwt.PyJWTError:
            return _BAD_TIMEFRAME
        if claims["iss"] != account.client_email:
            return "Invalid JWT Signature."
        if account.disabled:
            return "Account has been disabled."
        if not 0 < claims["exp"] - claims["iat"] <= MAX_ASSERTION_LIFETIME:
            return _BAD_TIMEFRAME
        return account, claims
