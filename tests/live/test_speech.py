"""Speech synthesis with a Gemini TTS model, over a real socket to the fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import json

import aiohttp
from google import genai
from google.genai import types
from google.oauth2 import service_account
import pytest

from custom_components.gemini_live.live import (
    ApiKeyCredentials,
    LiveAuthError,
    LiveClient,
    LiveConnectionError,
    LiveEndpoint,
    LiveError,
    LiveInvalidArgumentError,
    LiveModelNotFoundError,
    LivePermissionError,
    LiveQuotaError,
    LiveServiceUnavailableError,
    LiveTimeoutError,
    Provider,
    ServiceAccount,
    ServiceAccountCredentials,
    SpeechStream,
)
from custom_components.gemini_live.live.speech import EventDecoder
from tests.fake_live import (
    FakeLiveServer,
    SpeechCall,
    SpeechError,
    SpeechStall,
    recognize,
    speech,
)
from tests.fake_live.protocol import normalize

from .conftest import ClientFactory

MODEL = "gemini-3.8-flash-lite-tts"
TEXT = "Is the garage door closed? I will check it now."
RATE = 24000


async def read(stream: SpeechStream) -> list[bytes]:
    """Return every chunk of a stream (bounded)."""
    async with asyncio.timeout(10):
        return [chunk async for chunk in stream]


async def test_developer_api_speaks_the_text_verbatim(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """The audio is the exact text, in several chunks, in the chosen voice."""
    fake_live.speech.serve()

    stream = await gemini_client().synthesize(MODEL, TEXT, voice="Puck")
    chunks = await read(stream)

    assert len(chunks) > 3
    assert b"".join(chunks) == speech(TEXT, RATE)
    assert recognize(b"".join(chunks), RATE) == TEXT
    (call,) = fake_live.speech.calls
    assert (call.provider, call.model, call.text, call.voice) == (
        "gemini_api",
        MODEL,
        TEXT,
        "Puck",
    )
    assert call.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert call.query == {"alt": "sse"}
    assert call.headers["x-goog-api-key"] == fake_live.api_key
    assert call.body["generationConfig"] == {
        "responseModalities": ["AUDIO"],
        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}},
    }
    assert call.finished


@pytest.mark.parametrize(
    ("location", "served_in"), [("us-central1", "global"), ("eu", "eu")]
)
async def test_vertex_ai_speaks_where_the_tts_models_are_served(
    fake_live: FakeLiveServer,
    vertex_client: ClientFactory,
    location: str,
    served_in: str,
) -> None:
    """A regional entry speaks from "global", a multi-region one from itself."""
    fake_live.speech.serve("vertex_ai")

    chunks = await read(
        await vertex_client(location).synthesize(MODEL, TEXT, voice="Kore")
    )

    assert recognize(b"".join(chunks), RATE) == TEXT
    (call,) = fake_live.speech.calls
    assert call.path == (
        f"/v1/projects/test-project/locations/{served_in}"
        f"/publishers/google/models/{MODEL}:streamGenerateContent"
    )
    assert call.headers["Authorization"].startswith("Bearer ya29.")
    assert call.voice == "Kore"


async def test_chunks_arrive_before_the_stream_ends(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """The first chunk is yielded while the server still holds the rest."""
    fake_live.speech.serve()
    fake_live.speech.add_fault(SpeechStall(after_chunks=1))

    stream = await gemini_client().synthesize(MODEL, TEXT)
    async with asyncio.timeout(5):
        first = await anext(stream)
    call = fake_live.speech.calls[0]
    assert (call.chunks_sent, call.finished) == (1, False)

    fake_live.speech.release()
    rest = await read(stream)

    assert first + b"".join(rest) == speech(TEXT, RATE)
    assert call.finished


@pytest.mark.parametrize("provider", ["gemini_api", "vertex_ai"])
async def test_a_model_not_served_is_not_found(
    fake_live: FakeLiveServer,
    gemini_client: ClientFactory,
    vertex_client: ClientFactory,
    provider: str,
) -> None:
    """Credentials without the TTS model: LiveModelNotFoundError, at once."""
    client = gemini_client() if provider == "gemini_api" else vertex_client()

    with pytest.raises(LiveModelNotFoundError) as err:
        await client.synthesize(MODEL, TEXT)

    assert fake_live.speech.calls[0].status == 404
    assert MODEL in err.value.reason


async def test_a_wrong_base_url_is_a_connection_error(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    """A 404 that is not Google's error names the URL, not the model."""
    fake_live.speech.serve()
    endpoint = LiveEndpoint(
        provider=Provider.GEMINI_API, base_url=f"{fake_live.base_url}/wrong"
    )
    client = LiveClient(http, endpoint, ApiKeyCredentials(fake_live.api_key))

    with pytest.raises(LiveConnectionError) as err:
        await client.synthesize(MODEL, TEXT)

    assert not isinstance(err.value, LiveModelNotFoundError)
    assert "HTTP 404" in str(err.value)
    assert fake_live.speech.calls == []


async def test_a_location_without_tts_is_not_found(
    fake_live: FakeLiveServer, vertex_client: ClientFactory
) -> None:
    """Vertex AI without the model in the entry's multi-region: not found."""
    fake_live.speech.serve()
    fake_live.speech.vertex_locations.discard("eu")

    with pytest.raises(LiveModelNotFoundError):
        await vertex_client("eu").synthesize(MODEL, TEXT)


async def test_a_wrong_api_key_is_an_auth_error(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """400 API_KEY_INVALID is the key's fault, not a bad request; no secret shown."""
    fake_live.speech.serve()
    wrong = "AIzaSyWRONG-" + "x" * 27

    with pytest.raises(LiveAuthError) as err:
        await gemini_client(wrong).synthesize(MODEL, TEXT)

    assert fake_live.speech.calls[0].status == 400
    assert_no_secret(err.value, wrong)


async def test_a_revoked_token_is_an_auth_error(
    fake_live: FakeLiveServer, vertex_client: ClientFactory
) -> None:
    """A bearer token the server no longer accepts: LiveAuthError, no token shown."""
    fake_live.speech.serve()
    client = vertex_client()
    await read(await client.synthesize(MODEL, TEXT))
    fake_live.expire_tokens()

    with pytest.raises(LiveAuthError) as err:
        await client.synthesize(MODEL, TEXT)

    token = fake_live.speech.calls[-1].headers["Authorization"].split()[1]
    assert fake_live.speech.calls[-1].status == 401
    assert_no_secret(err.value, token)


async def test_another_projects_model_is_a_permission_error(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    """A service account used on a project it does not belong to: 403."""
    fake_live.speech.serve()
    account = ServiceAccount.from_json(fake_live.service_account_json())
    endpoint = LiveEndpoint(
        provider=Provider.VERTEX_AI,
        base_url=fake_live.base_url,
        project_id="someone-else",
        location="us-central1",
    )
    client = LiveClient(http, endpoint, ServiceAccountCredentials(account))

    with pytest.raises(LivePermissionError):
        await client.synthesize(MODEL, TEXT)


async def test_quota_is_a_quota_error(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """429 RESOURCE_EXHAUSTED: LiveQuotaError with Google's text as reason."""
    fake_live.speech.serve()
    fake_live.speech.add_fault(SpeechError.quota())

    with pytest.raises(LiveQuotaError) as err:
        await gemini_client().synthesize(MODEL, TEXT)

    assert "quota" in err.value.reason


async def test_an_unknown_voice_is_a_bad_request(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """A voice that is not one of the prebuilt ones: LiveInvalidArgumentError."""
    fake_live.speech.serve()

    with pytest.raises(LiveInvalidArgumentError):
        await gemini_client().synthesize(MODEL, TEXT, voice="Robot")

    assert fake_live.speech.calls[0].rejected_field == (
        "generationConfig.speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName"
    )


async def test_a_language_code_is_sent_and_checked(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """`language` goes as speechConfig.languageCode; one the API lacks is refused."""
    fake_live.speech.serve()
    client = gemini_client()

    await read(await client.synthesize(MODEL, "Xin chào.", language="vi-VN"))
    with pytest.raises(LiveInvalidArgumentError):
        await client.synthesize(MODEL, TEXT, language="xx-XX")

    accepted, refused = fake_live.speech.calls
    assert accepted.language == "vi-VN"
    assert refused.rejected_field == "generationConfig.speechConfig.languageCode"


async def test_empty_text_is_refused_before_any_request(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """Nothing to say: a clear error and no request."""
    with pytest.raises(LiveInvalidArgumentError):
        await gemini_client().synthesize(MODEL, " \n")

    assert fake_live.speech.calls == []


async def test_an_error_event_mid_stream_ends_it(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """An error event after some audio: that audio, then the typed error."""
    fake_live.speech.serve()
    fake_live.speech.add_fault(SpeechError(after_chunks=2))
    stream = await gemini_client().synthesize(MODEL, TEXT)

    received = [await anext(stream), await anext(stream)]
    with pytest.raises(LiveServiceUnavailableError):
        await anext(stream)

    assert b"".join(received) == fake_live.speech.calls[0].audio
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_a_cut_stream_is_a_connection_error(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """A stream that ends before its last event: the audio, then an error."""
    fake_live.speech.serve()
    fake_live.speech.add_fault(SpeechStall(after_chunks=1))
    stream = await gemini_client().synthesize(MODEL, TEXT)
    first = await anext(stream)

    fake_live.speech.close()  # the held stream ends without its last event
    with pytest.raises(LiveConnectionError):
        async with asyncio.timeout(5):
            await anext(stream)

    assert first == fake_live.speech.calls[0].audio
    assert not fake_live.speech.calls[0].finished


async def test_a_silent_stream_times_out(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """No event within the read timeout: LiveTimeoutError, connection closed."""
    fake_live.speech.serve()
    fake_live.speech.add_fault(SpeechStall(after_chunks=0))
    stream = await gemini_client().synthesize(MODEL, TEXT, read_timeout=0.2)

    with pytest.raises(LiveTimeoutError):
        async with asyncio.timeout(5):
            await anext(stream)

    call = fake_live.speech.calls[0]
    await fake_live.wait_for(lambda: call.client_left, what="the client to leave")
    assert not call.finished


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Yield the URL of a server that accepts connections and never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.usefixtures("socket_enabled")
async def test_no_answer_times_out(http: aiohttp.ClientSession) -> None:
    """A server that never answers: LiveTimeoutError after the connect timeout."""
    async with silent_server() as url:
        endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=url)
        client = LiveClient(
            http, endpoint, ApiKeyCredentials("AIza-secret"), connect_timeout=0.3
        )
        with pytest.raises(LiveTimeoutError) as err:
            await client.synthesize(MODEL, TEXT)

    assert_no_secret(err.value, "AIza-secret")


@pytest.mark.usefixtures("socket_enabled")
async def test_an_unreachable_host_is_a_connection_error(
    http: aiohttp.ClientSession,
) -> None:
    """Nothing listening: LiveConnectionError naming the host only."""
    async with silent_server() as url:
        pass  # closed: its port is now free
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=url)
    client = LiveClient(http, endpoint, ApiKeyCredentials("AIza-secret"))

    with pytest.raises(LiveConnectionError) as err:
        await client.synthesize(MODEL, TEXT)

    assert_no_secret(err.value, "AIza-secret")


async def test_closing_early_closes_the_connection(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """aclose() mid-stream: the server sees the client leave."""
    fake_live.speech.serve()
    fake_live.speech.add_fault(SpeechStall(after_chunks=1))
    stream = await gemini_client().synthesize(MODEL, TEXT)
    await anext(stream)

    await stream.aclose()

    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    call = fake_live.speech.calls[0]
    await fake_live.wait_for(lambda: call.client_left, what="the client to leave")
    assert (call.chunks_sent, call.finished) == (1, False)


def assert_no_secret(error: LiveError, secret: str) -> None:
    """Check that the error, its reason and its chain never show `secret`."""
    seen: BaseException | None = error
    while seen is not None:
        assert secret not in str(seen)
        assert secret not in repr(seen)
        seen = seen.__cause__ or (
            None if seen.__suppress_context__ else seen.__context__
        )
    assert secret not in error.reason


@pytest.mark.parametrize(
    ("stream", "events"),
    [
        ([b"data: 1\n\n"], ["1"]),
        ([b"data: 1\r\n\r\ndata:2\r\n\r\n"], ["1", "2"]),
        ([b"da", b'ta: {"a"', b": 1}\r", b"\n\r\n"], ['{"a": 1}']),
        ([b": comment\nevent: x\ndata: a\ndata: b\n\n"], ["a\nb"]),
        ([b"data: cut at the end"], []),
        ([b"\n\ndata: 3\n\n"], ["3"]),
    ],
)
def test_server_sent_events(stream: list[bytes], events: list[str]) -> None:
    """Events are cut at blank lines, whatever the chunking and line ends."""
    decoder = EventDecoder()

    assert [event for chunk in stream for event in decoder.feed(chunk)] == events


@pytest.mark.parametrize(
    ("endpoint", "prefix"),
    [
        (
            LiveEndpoint(provider=Provider.GEMINI_API),
            "https://generativelanguage.googleapis.com/v1beta/models/",
        ),
        (
            LiveEndpoint(
                provider=Provider.VERTEX_AI, project_id="p", location="europe-west4"
            ),
            (
                "https://aiplatform.googleapis.com/v1/projects/p/locations/global"
                "/publishers/google/models/"
            ),
        ),
        (
            LiveEndpoint(provider=Provider.VERTEX_AI, project_id="p", location="us"),
            (
                "https://aiplatform.us.rep.googleapis.com/v1/projects/p/locations/us"
                "/publishers/google/models/"
            ),
        ),
        (
            LiveEndpoint(
                provider=Provider.GEMINI_API, base_url="wss://proxy.example/gemini/"
            ),
            "https://proxy.example/gemini/v1beta/models/",
        ),
    ],
)
def test_speech_urls(endpoint: LiveEndpoint, prefix: str) -> None:
    """Production URLs: Developer API v1beta; Vertex AI v1, global or multi-region."""
    url = f"{prefix}{MODEL}:streamGenerateContent?alt=sse"
    assert endpoint.speech_url(MODEL) == url
    assert endpoint.speech_url(f"models/{MODEL}") == url


SDK_CONFIG = types.GenerateContentConfig(
    response_modalities=["AUDIO"],
    speech_config=types.SpeechConfig(
        voice_config=types.VoiceConfig(
            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Puck")
        )
    ),
)
"""The official SDK's TTS request (google-genai, test-only oracle)."""


async def sdk_audio(client: genai.Client) -> bytes:
    """Return the audio the SDK's generate_content_stream reads from the fake."""
    async with client.aio as aio:
        stream = await aio.models.generate_content_stream(
            model=MODEL, contents=TEXT, config=SDK_CONFIG
        )
        pcm = b""
        async for response in stream:
            for part in response.candidates[0].content.parts:  # type: ignore[index, union-attr]
                pcm += part.inline_data.data  # type: ignore[operator, union-attr]
        return pcm


def same_request(ours: SpeechCall, theirs: SpeechCall) -> None:
    """Check that both asked for the same synthesis the same way."""
    assert ours.body == normalize(theirs.body)  # the SDK mixes key cases
    assert ours.path.split("/", 2)[2] == theirs.path.split("/", 2)[2]
    assert ours.query == theirs.query == {"alt": "sse"}
    assert (ours.text, ours.voice) == (theirs.text, theirs.voice) == (TEXT, "Puck")


async def test_developer_api_request_matches_the_sdk(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """Our request is the SDK's; both read the fake's SSE into the same PCM."""
    fake_live.speech.serve()
    ours = b"".join(
        await read(await gemini_client().synthesize(MODEL, TEXT, voice="Puck"))
    )
    sdk = genai.Client(
        api_key=fake_live.api_key,
        http_options=types.HttpOptions(base_url=fake_live.base_url),
    )

    theirs = await sdk_audio(sdk)

    assert ours == theirs == speech(TEXT, RATE)
    our_call, their_call = fake_live.speech.calls
    same_request(our_call, their_call)
    # Pinned: v1beta, as the speech-generation guide (the SDK 3.x uses v1).
    assert our_call.path.startswith("/v1beta/models/")
    assert their_call.path.startswith("/v1/models/")


async def test_vertex_ai_request_matches_the_sdk(
    fake_live: FakeLiveServer, vertex_client: ClientFactory
) -> None:
    """Vertex AI: the SDK in the global location asks what we ask (but v1beta1)."""
    fake_live.speech.serve()
    ours = b"".join(
        await read(await vertex_client().synthesize(MODEL, TEXT, voice="Puck"))
    )
    key = json.loads(fake_live.service_account_json())
    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        key, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    sdk = genai.Client(
        vertexai=True,
        project="test-project",
        location="global",
        credentials=credentials,
        http_options=types.HttpOptions(base_url=fake_live.base_url),
    )

    theirs = await sdk_audio(sdk)

    assert ours == theirs == speech(TEXT, RATE)
    our_call, their_call = fake_live.speech.calls
    same_request(our_call, their_call)
    assert our_call.path.startswith("/v1/projects/test-project/locations/global/")
    assert their_call.path.startswith(
        "/v1beta1/projects/test-project/locations/global/"
    )
