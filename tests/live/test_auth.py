"""Credentials: service-account parsing and the JWT-bearer token exchange."""

from collections.abc import AsyncIterator, Callable
import json
import time
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
import jwt
import pytest
import pytest_asyncio

from custom_components.gemini_live.live import (
    ApiKeyCredentials,
    InvalidServiceAccountError,
    LiveAuthError,
    LiveConnectionError,
    LiveServiceUnavailableError,
    ServiceAccount,
    ServiceAccountCredentials,
)
from custom_components.gemini_live.live.auth import (
    DEFAULT_TOKEN_URI,
    JWT_BEARER_GRANT,
    SCOPE,
)
from tests.fake_live import FakeLiveServer


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_PEM = pem(RSA_KEY)
ACCOUNT = {
    "type": "service_account",
    "project_id": "proj",
    "private_key_id": "kid-1",
    "private_key": KEY_PEM,
    "client_email": "sa@proj.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.example/token",
}


def account_json(**changes: Any) -> str:
    data = {**ACCOUNT, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not None})


async def test_api_key_credentials() -> None:
    credentials = ApiKeyCredentials("AIza-secret")
    assert await credentials.headers(None) == {"x-goog-api-key": "AIza-secret"}  # type: ignore[arg-type]
    assert "AIza-secret" not in repr(credentials)


def test_service_account_from_json() -> None:
    account = ServiceAccount.from_json(account_json())
    assert account == ServiceAccount(
        project_id="proj",
        client_email="sa@proj.iam.gserviceaccount.com",
        private_key=KEY_PEM,
        token_uri="https://oauth2.example/token",
        private_key_id="kid-1",
    )
    assert "PRIVATE KEY" not in repr(account)
    minimal = ServiceAccount.from_json(account_json(token_uri=None, private_key_id=""))
    assert minimal.token_uri == DEFAULT_TOKEN_URI
    assert minimal.private_key_id is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "not an object"),
        (account_json(type="authorized_user"), "not a service account"),
        (account_json(type=None), "not a service account"),
        (account_json(project_id=None, client_email=" "), "project_id, client_email"),
        (account_json(private_key=42), "private_key"),
        (
            account_json(
                private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            ),
            "cannot be loaded",
        ),
        (
            account_json(private_key=pem(ec.generate_private_key(ec.SECP256R1()))),
            "not an RSA key",
        ),
    ],
    ids=["json", "list", "type", "no-type", "missing", "key-type", "bad-key", "ec-key"],
)
def test_invalid_service_account(text: str, match: str) -> None:
    with pytest.raises(InvalidServiceAccountError, match=match) as info:
        ServiceAccount.from_json(text)
    assert "AAAA" not in str(info.value)
    # Never chained to a parser error that could quote the key.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


async def test_token_exchange(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    account = ServiceAccount.from_json(fake_live.service_account_json())
    credentials = ServiceAccountCredentials(account)
    headers = await credentials.headers(http)
    assert headers == await credentials.headers(http)  # cached
    assert fake_live.tokens_issued == 1
    token = headers["Authorization"].removeprefix("Bearer ")
    assert fake_live.authority.check(headers["Authorization"]) is not None
    assert token not in repr(credentials)
    # The assertion: RS256 with kid, claims per the JWT-bearer grant.
    (grant,) = fake_live.authority.grant_requests
    assert grant["grant_type"] == JWT_BEARER_GRANT
    header = jwt.get_unverified_header(grant["assertion"])
    assert header["alg"] == "RS256"
    assert header["kid"] == account.private_key_id
    claims = jwt.decode(grant["assertion"], options={"verify_signature": False})
    assert claims["iss"] == account.client_email
    assert claims["aud"] == fake_live.token_uri
    assert claims["scope"] == SCOPE
    assert claims["exp"] - claims["iat"] == 3600


async def test_token_refreshed_five_minutes_before_expiry(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    credentials = ServiceAccountCredentials(
        ServiceAccount.from_json(fake_live.service_account_json())
    )
    first = await credentials.headers(http)
    credentials._expires_at = time.time() + 301
    assert await credentials.headers(http) == first
    credentials._expires_at = time.time() + 299
    second = await credentials.headers(http)
    assert second != first
    assert fake_live.tokens_issued == 2


async def test_token_without_kid(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    data = json.loads(fake_live.service_account_json())
    del data["private_key_id"]
    credentials = ServiceAccountCredentials(ServiceAccount.from_json(json.dumps(data)))
    assert (await credentials.headers(http))["Authorization"].startswith("Bearer ")


async def test_token_refused(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    """A key the token endpoint does not know: invalid_grant."""
    data = json.loads(fake_live.service_account_json())
    data["private_key"] = KEY_PEM
    credentials = ServiceAccountCredentials(ServiceAccount.from_json(json.dumps(data)))
    with pytest.raises(LiveAuthError, match=r"\(HTTP 400\): invalid_grant") as info:
        await credentials.headers(http)
    assert info.value.reason == "invalid_grant: Invalid JWT Signature."


async def test_token_endpoint_unreachable(http: aiohttp.ClientSession) -> None:
    account = ServiceAccount.from_json(
        account_json(token_uri="http://127.0.0.1:9/token")
    )
    with pytest.raises(LiveConnectionError, match="Cannot reach the token endpoint"):
        await ServiceAccountCredentials(account).headers(http)


type Handler = Callable[[web.Request], web.Response]


@pytest_asyncio.fixture
async def token_server(
    socket_enabled: None,
) -> AsyncIterator[Callable[[web.Response], str]]:
    """Serve a token endpoint giving set answers (the fake one always is right)."""
    responses: list[web.Response] = []

    async def handle(_: web.Request) -> web.Response:
        return responses.pop(0)

    app = web.Application()
    app.router.add_post("/token", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/token"

    def answer(response: web.Response) -> str:
        responses.append(response)
        return url

    yield answer
    await runner.cleanup()


@pytest.mark.parametrize(
    ("response", "error", "match"),
    [
        (
            web.Response(status=503, text="down"),
            LiveServiceUnavailableError,
            r"\(HTTP 503\)$",
        ),
        (
            web.json_response({"error": "unauthorized_client"}, status=401),
            LiveAuthError,
            r"\(HTTP 401\): unauthorized_client$",
        ),
        (web.Response(text="<html>"), LiveServiceUnavailableError, "no token"),
        (
            web.json_response({"expires_in": 10}),
            LiveServiceUnavailableError,
            "no token",
        ),
    ],
)
async def test_token_endpoint_errors(
    http: aiohttp.ClientSession,
    token_server: Callable[[web.Response], str],
    response: web.Response,
    error: type[Exception],
    match: str,
) -> None:
    account = ServiceAccount.from_json(account_json(token_uri=token_server(response)))
    with pytest.raises(error, match=match):
        await ServiceAccountCredentials(account).headers(http)


@pytest.mark.parametrize(
    ("expires_in", "lifetime"), [(1200, 1200), ("soon", 3600), (None, 3600)]
)
async def test_token_lifetime(
    http: aiohttp.ClientSession,
    token_server: Callable[[web.Response], str],
    expires_in: object,
    lifetime: float,
) -> None:
    body: dict[str, object] = {"access_token": "ya29.x"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    account = ServiceAccount.from_json(
        account_json(token_uri=token_server(web.json_response(body)))
    )
    credentials = ServiceAccountCredentials(account)
    before = time.time()
    assert await credentials.headers(http) == {"Authorization": "Bearer ya29.x"}
    assert before + lifetime <= credentials._expires_at <= time.time() + lifetime
