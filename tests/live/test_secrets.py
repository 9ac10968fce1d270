"""Secrets (API key, bearer token, private key) never reach errors, reprs or logs."""

import json
import logging
import traceback

import aiohttp
import pytest

from custom_components.gemini_live.live import (
    ApiKeyCredentials,
    LiveAuthError,
    LiveClient,
    LiveConfig,
    LiveEndpoint,
    LiveError,
    Provider,
    ServiceAccount,
    ServiceAccountCredentials,
    TurnComplete,
)
from tests.fake_live import FakeLiveServer, Refuse

from .conftest import GEMINI_MODEL, VERTEX_MODEL


def private_key_lines(account_json: str) -> list[str]:
    """Return the base64 body lines of the private key."""
    pem = json.loads(account_json)["private_key"]
    return [line for line in pem.splitlines() if line and "PRIVATE KEY" not in line]


def assert_hidden(secrets: list[str], *texts: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text


def error_texts(error: BaseException) -> list[str]:
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


async def test_api_key_never_shown(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=fake_live.base_url)
    good = LiveClient(http, endpoint, ApiKeyCredentials(fake_live.api_key))
    async with await good.connect(LiveConfig(model=GEMINI_MODEL)) as session:
        await session.send_text("hi")
        async for event in session.receive():
            if isinstance(event, TurnComplete):
                break
    errors: list[LiveError] = []
    wrong_key = "AIzaSyWRONG-" + "x" * 27
    bad = LiveClient(http, endpoint, ApiKeyCredentials(wrong_key))
    with pytest.raises(LiveAuthError) as info:
        await bad.validate(GEMINI_MODEL)
    errors.append(info.value)
    fake_live.add_fault(Refuse(status=401, body=""))
    with pytest.raises(LiveAuthError) as info:
        await good.validate(GEMINI_MODEL)
    errors.append(info.value)
    secrets = [fake_live.api_key, wrong_key]
    assert_hidden(secrets, caplog.text, repr(good), repr(bad))
    for error in errors:
        assert_hidden(secrets, *error_texts(error))


async def test_service_account_secrets_never_shown(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    text = fake_live.service_account_json()
    account = ServiceAccount.from_json(text)
    credentials = ServiceAccountCredentials(account)
    endpoint = LiveEndpoint(
        provider=Provider.VERTEX_AI,
        base_url=fake_live.base_url,
        project_id=account.project_id,
        location="us-central1",
    )
    client = LiveClient(http, endpoint, credentials)
    await client.validate(VERTEX_MODEL)
    errors: list[LiveError] = []
    fake_live.expire_tokens()  # the cached token is now refused
    with pytest.raises(LiveAuthError) as info:
        await client.validate(VERTEX_MODEL)
    errors.append(info.value)
    fake_live.add_fault(Refuse(status=403))
    with pytest.raises(LiveAuthError) as info:
        await client.validate(VERTEX_MODEL)
    errors.append(info.value)
    # A key the token endpoint does not trust.
    other = json.loads(fake_live.service_account_json())
    other["private_key_id"] = "unknown"
    stranger = ServiceAccountCredentials(ServiceAccount.from_json(json.dumps(other)))
    with pytest.raises(LiveAuthError) as info:
        await stranger.headers(http)
    errors.append(info.value)
    secrets = [*fake_live.authority.tokens, *private_key_lines(text)]
    secrets += private_key_lines(json.dumps(other))
    assert len(fake_live.authority.tokens) == 1
    assert_hidden(
        secrets,
        caplog.text,
        repr(account),
        repr(credentials),
        repr(client),
        str(account),
    )
    for error in errors:
        assert_hidden(secrets, *error_texts(error))
