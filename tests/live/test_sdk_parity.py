"""Parity with the official SDK (google-genai 3.6.1, test-only oracle).

The SDK and the project's client are driven with the same settings against
the fake server, and the frames the server recorded are compared field by
field. Key case is normalised (the SDK sends a snake_case/camelCase mixture,
the server accepts both) except for user data: function ``args``/``response``
values and the property names of ``parameters`` schemas. Every other
difference the SDK introduces is normalised explicitly below, with a comment.
"""

from collections.abc import Callable
import contextlib
from dataclasses import dataclass, replace
import json
import re
from typing import Any

import aiohttp
from google import genai
from google.genai import errors, types
from google.oauth2 import service_account
import pytest
import websockets

from custom_components.gemini_live.live import (
    ActivityDetection,
    ApiKeyCredentials,
    ContextWindowCompression,
    EndSensitivity,
    FunctionDeclaration,
    FunctionResponse,
    HistoryTurn,
    LiveClient,
    LiveConfig,
    LiveEndpoint,
    LiveSession,
    Provider,
    ServiceAccount,
    ServiceAccountCredentials,
    StartSensitivity,
)
from custom_components.gemini_live.live.events import decode_base64
from custom_components.gemini_live.live.models import model_family
from tests.fake_live import Connection, FakeLiveServer
from tests.fake_live.families import values_at

from .conftest import GEMINI_MODEL, VERTEX_MODEL

PARAMETERS = {
    "type": "OBJECT",
    "properties": {
        "device_name": {"type": "STRING", "description": "Name"},
        "brightnessPct": {"type": "INTEGER"},
        "area": {"type": "OBJECT", "properties": {"floor_id": {"type": "STRING"}}},
    },
    "required": ["device_name"],
}
PCM = bytes(range(256)) * 8  # has bytes that differ between base64 alphabets
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\xff\xd9"
TOOL_RESPONSE = {"snake_key": {"camelKey": [1, {"Mixed_Case": None}]}}


# ---------------------------------------------------------------- normalise


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def schema(value: Any) -> Any:
    """Re-case schema keywords, never property names."""
    if isinstance(value, list):
        return [schema(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = camel(key)
        if name == "properties":
            out[name] = {prop: schema(sub) for prop, sub in item.items()}
        else:
            out[name] = schema(item)
    return out


def normalise(value: Any) -> Any:
    """CamelCase every key, except inside args/response and schema property names."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = camel(key)
            if name in ("args", "response"):
                out[name] = item
            elif name == "parameters":
                out[name] = schema(item)
            else:
                out[name] = normalise(item)
        return out
    if isinstance(value, list):
        return [normalise(item) for item in value]
    return value


def frames(conn: Connection) -> list[dict[str, Any]]:
    """Return the client frames as recorded, normalised for comparison."""
    result = []
    for frame in normalise(conn.frames):
        blob = frame.get("realtimeInput", {})
        for kind in ("audio", "video"):
            if kind in blob:
                # The SDK encodes bytes as URL-safe base64, we use the standard
                # alphabet (the server accepts both): compare the bytes.
                blob[kind]["data"] = decode_base64(blob[kind]["data"])
        setup = frame.get("setup")
        if setup is not None:
            # The SDK adds role "user" to the system instruction; the role is
            # optional there and the reference's setup (§2.6) omits it.
            setup.get("systemInstruction", {}).pop("role", None)
            # The SDK puts googleSearch before functionDeclarations; order of
            # tool entries carries no meaning.
            setup.get("tools", []).sort(key=sorted)
        update = frame.get("contextUpdate")
        if update is not None:
            # The same optional role on a contextUpdate's system instruction.
            update.get("systemInstruction", {}).pop("role", None)
        result.append(frame)
    return result


def path(conn: Connection) -> str:
    """Return the request path, API version blanked and slashes collapsed.

    The SDK 3.x connects to the Developer API's ``v1`` by default; we use the
    documented ``v1beta`` (reference §1.1). Both are compared separately.
    """
    return re.sub(r"\.v1[a-z0-9]*\.", ".VERSION.", re.sub("/{2,}", "/", conn.path))


# ------------------------------------------------------------------ drivers


def sdk_client(
    server: FakeLiveServer, api_version: str | None = None, **kwargs: Any
) -> genai.Client:
    """Return an SDK client of the fake server over plain ws:// (reference §9)."""
    client = genai.Client(
        http_options=types.HttpOptions(
            base_url=server.base_url, api_version=api_version
        ),
        **kwargs,
    )
    api = client._api_client
    base_url: Callable[..., str] = api._websocket_base_url
    # The SDK forces wss:// and passes an SSL context to websockets' connect.
    api._websocket_base_url = lambda http_options=None: base_url(  # type: ignore[method-assign]
        http_options
    ).replace("wss://", "ws://", 1)
    api._websocket_ssl_ctx = {}
    return client


type Script = Callable[[Any], Any]


async def drive_sdk(
    client: genai.Client, model: str, config: types.LiveConnectConfig, script: Script
) -> None:
    async with client.aio.live.connect(model=model, config=config) as session:
        await script(session)


async def drive_ours(
    client: LiveClient,
    config: LiveConfig,
    script: Callable[[LiveSession], Any],
    handle: str | None = None,
) -> None:
    async with await client.connect(config, resumption_handle=handle) as session:
        await script(session)


async def compare(server: FakeLiveServer) -> tuple[Connection, Connection]:
    """Wait for both connections' frames; return (ours, SDK's)."""
    ours, sdk = server.connections[-2:]
    for conn in (ours, sdk):
        await conn.wait_closed()
    assert frames(ours) == frames(sdk)
    assert path(ours) == path(sdk)
    return ours, sdk


# --------------------------------------------------------------------- tests

FULL_CONFIG = LiveConfig(
    model=GEMINI_MODEL,
    voice="Kore",
    language="en-US",
    system_instruction="You are a Home Assistant voice assistant.",
    temperature=0.7,
    thinking_budget=0,
    functions=(
        FunctionDeclaration(
            name="HassTurnOn", description="Turns on a device", parameters=PARAMETERS
        ),
        FunctionDeclaration(name="GetTime", description="Tells the time"),
    ),
    google_search=True,
    activity_detection=ActivityDetection(
        disabled=True,
        start_sensitivity=StartSensitivity.LOW,
        end_sensitivity=EndSensitivity.HIGH,
        prefix_padding_ms=20,
        silence_duration_ms=500,
    ),
    context_window_compression=ContextWindowCompression(
        trigger_tokens=25600, target_tokens=12800
    ),
)
FULL_SDK_CONFIG = types.LiveConnectConfig(
    response_modalities=[types.Modality.AUDIO],
    speech_config=types.SpeechConfig(
        voice_config=types.VoiceConfig(
            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore")
        ),
        language_code="en-US",
    ),
    system_instruction="You are a Home Assistant voice assistant.",
    temperature=0.7,
    thinking_config=types.ThinkingConfig(thinking_budget=0),
    tools=[
        types.Tool(
            function_declarations=[
                types.FunctionDeclaration(
                    name="HassTurnOn",
                    description="Turns on a device",
                    parameters=types.Schema.model_validate(PARAMETERS),
                ),
                types.FunctionDeclaration(name="GetTime", description="Tells the time"),
            ]
        ),
        types.Tool(google_search=types.GoogleSearch()),
    ],
    realtime_input_config=types.RealtimeInputConfig(
        automatic_activity_detection=types.AutomaticActivityDetection(
            disabled=True,
            start_of_speech_sensitivity=types.StartSensitivity.START_SENSITIVITY_LOW,
            end_of_speech_sensitivity=types.EndSensitivity.END_SENSITIVITY_HIGH,
            prefix_padding_ms=20,
            silence_duration_ms=500,
        )
    ),
    input_audio_transcription=types.AudioTranscriptionConfig(),
    output_audio_transcription=types.AudioTranscriptionConfig(),
    session_resumption=types.SessionResumptionConfig(),
    context_window_compression=types.ContextWindowCompressionConfig(
        trigger_tokens=25600,
        sliding_window=types.SlidingWindow(target_tokens=12800),
    ),
)


async def manual_turns_sdk(session: Any, *, will_continue: bool = True) -> None:
    await session.send_realtime_input(activity_start=types.ActivityStart())
    await session.send_realtime_input(
        audio=types.Blob(data=PCM, mime_type="audio/pcm;rate=16000")
    )
    await session.send_realtime_input(activity_end=types.ActivityEnd())
    await session.send_realtime_input(
        video=types.Blob(data=JPEG, mime_type="image/jpeg")
    )
    await session.send_realtime_input(text="what is on the screen?")
    await session.send_client_content(
        turns=types.Content(role="user", parts=[types.Part(text="Hi there")]),
        turn_complete=True,
    )
    await session.send_tool_response(
        function_responses=[
            types.FunctionResponse(
                id="call-1", name="HassTurnOn", response=TOOL_RESPONSE
            ),
            types.FunctionResponse(
                id="call-2",
                name="GetTime",
                response={"output": "noon"},
                scheduling=types.FunctionResponseScheduling.INTERRUPT,
                will_continue=False if will_continue else None,
            ),
        ]
    )


async def manual_turns_ours(session: LiveSession) -> None:
    await session.send_activity_start()
    await session.send_audio(PCM)
    await session.send_activity_end()
    await session.send_video_frame(JPEG)
    await session.send_realtime_text("what is on the screen?")
    await session.send_text("Hi there")
    await session.send_tool_response(
        [
            FunctionResponse(id="call-1", name="HassTurnOn", response=TOOL_RESPONSE),
            FunctionResponse(
                id="call-2",
                name="GetTime",
                response={"output": "noon"},
                scheduling="INTERRUPT",
                will_continue=False,
            ),
        ]
    )


@pytest.fixture
def gemini(fake_live: FakeLiveServer, http: aiohttp.ClientSession) -> LiveClient:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=fake_live.base_url)
    return LiveClient(http, endpoint, ApiKeyCredentials(fake_live.api_key))


async def test_full_setup_and_client_messages(
    fake_live: FakeLiveServer, gemini: LiveClient
) -> None:
    await drive_ours(gemini, FULL_CONFIG, manual_turns_ours)
    sdk = sdk_client(fake_live, api_key=fake_live.api_key)
    await drive_sdk(sdk, GEMINI_MODEL, FULL_SDK_CONFIG, manual_turns_sdk)
    ours, theirs = await compare(fake_live)
    assert len(ours.frames) == 8
    # Real differences, kept visible: the API version, and the key case and
    # base64 alphabet the SDK uses (the server accepts all of them).
    assert ours.route.version == "v1beta"
    assert theirs.route.version == "v1"
    assert (
        ours.frames[2]["realtimeInput"]["audio"]["data"]
        != (theirs.frames[2]["realtime_input"]["audio"]["data"])
    )
    for conn in (ours, theirs):
        assert conn.headers["x-goog-api-key"] == fake_live.api_key
        assert "key" not in conn.query
    # User data is sent verbatim by both.
    for conn in (ours, theirs):
        declarations = next(
            tool["functionDeclarations"]
            for tool in normalise(conn.setup)["tools"]
            if "functionDeclarations" in tool
        )
        assert declarations[0]["parameters"] == PARAMETERS
    assert ours.tool_responses[0]["response"] == TOOL_RESPONSE
    assert theirs.tool_responses[0]["response"] == TOOL_RESPONSE


async def automatic_turn_sdk(session: Any) -> None:
    await session.send_realtime_input(
        audio=types.Blob(data=PCM, mime_type="audio/pcm;rate=16000")
    )
    await session.send_realtime_input(audio_stream_end=True)


async def automatic_turn_ours(session: LiveSession) -> None:
    await session.send_audio(PCM)
    await session.send_audio_stream_end()


async def test_default_config(fake_live: FakeLiveServer, gemini: LiveClient) -> None:
    """The project's defaults against the equivalent explicit SDK config."""
    await drive_ours(gemini, LiveConfig(model=GEMINI_MODEL), automatic_turn_ours)
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(
                disabled=False
            )
        ),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()
        ),
    )
    sdk = sdk_client(fake_live, api_key=fake_live.api_key)
    await drive_sdk(sdk, GEMINI_MODEL, config, automatic_turn_sdk)
    await compare(fake_live)


async def test_resumption_handle(fake_live: FakeLiveServer, gemini: LiveClient) -> None:
    async def nothing(_: Any) -> None:
        return None

    await drive_ours(gemini, LiveConfig(model=GEMINI_MODEL), nothing)
    handle = fake_live.connections[0].session.handles[0]  # type: ignore[union-attr]
    await drive_ours(gemini, LiveConfig(model=GEMINI_MODEL), nothing, handle)
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(
                disabled=False
            )
        ),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(handle=handle),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()
        ),
    )
    sdk = sdk_client(fake_live, api_key=fake_live.api_key)
    await drive_sdk(sdk, GEMINI_MODEL, config, nothing)
    ours, theirs = await compare(fake_live)
    assert ours.resumed
    assert theirs.resumed
    assert normalise(ours.setup)["sessionResumption"] == {"handle": handle}


async def test_history_and_context_update(
    fake_live: FakeLiveServer, gemini: LiveClient
) -> None:
    """send_history / send_context_update against the SDK's equivalents."""

    async def ours(session: LiveSession) -> None:
        await session.send_history(
            [HistoryTurn("user", "My name is Ada."), HistoryTurn("model", "Hi Ada!")]
        )
        await session.send_context_update(system_instruction="Answer briefly.")

    async def theirs(session: Any) -> None:
        await session.send_client_content(
            turns=[
                types.Content(role="user", parts=[types.Part(text="My name is Ada.")]),
                types.Content(role="model", parts=[types.Part(text="Hi Ada!")]),
            ],
            turn_complete=False,
        )
        await session.send_context_update(system_instruction="Answer briefly.")

    await drive_ours(gemini, LiveConfig(model=GEMINI_MODEL), ours)
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(
                disabled=False
            )
        ),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()
        ),
    )
    sdk = sdk_client(fake_live, api_key=fake_live.api_key)
    await drive_sdk(sdk, GEMINI_MODEL, config, theirs)
    ours_conn, _ = await compare(fake_live)
    assert [next(iter(frame)) for frame in ours_conn.frames] == [
        "setup",
        "clientContent",
        "contextUpdate",
    ]


async def test_vertex(fake_live: FakeLiveServer, http: aiohttp.ClientSession) -> None:
    text = fake_live.service_account_json()
    account = ServiceAccount.from_json(text)
    endpoint = LiveEndpoint(
        provider=Provider.VERTEX_AI,
        base_url=fake_live.base_url,
        project_id=account.project_id,
        location="us-central1",
    )
    client = LiveClient(http, endpoint, ServiceAccountCredentials(account))
    config = LiveConfig(
        model=VERTEX_MODEL,
        voice=FULL_CONFIG.voice,
        system_instruction=FULL_CONFIG.system_instruction,
        temperature=FULL_CONFIG.temperature,
        thinking_budget=FULL_CONFIG.thinking_budget,
        functions=FULL_CONFIG.functions,
        google_search=True,
        activity_detection=FULL_CONFIG.activity_detection,
        context_window_compression=FULL_CONFIG.context_window_compression,
    )
    await drive_ours(client, config, manual_turns_ours)
    sdk_config = FULL_SDK_CONFIG.model_copy(
        update={
            "speech_config": types.SpeechConfig(
                voice_config=FULL_SDK_CONFIG.speech_config.voice_config  # type: ignore[union-attr]
            )
        }
    )
    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        json.loads(text), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    sdk = sdk_client(
        fake_live,
        vertexai=True,
        project=account.project_id,
        location="us-central1",
        credentials=credentials,
    )

    async def vertex_turns_sdk(session: Any) -> None:
        # willContinue is Developer-API-only: the SDK refuses it on Vertex.
        await manual_turns_sdk(session, will_continue=False)

    await drive_sdk(sdk, VERTEX_MODEL, sdk_config, vertex_turns_sdk)
    ours, theirs = fake_live.connections[-2:]
    for conn in (ours, theirs):
        await conn.wait_closed()
        assert conn.headers["Authorization"].startswith("Bearer ya29.")
        assert "x-goog-api-key" not in conn.headers
    ours_frames, their_frames = frames(ours), frames(theirs)
    # Our tool response carries willContinue, which the SDK refuses on Vertex.
    assert (
        ours_frames[-1]["toolResponse"]["functionResponses"][1].pop("willContinue")
        is False
    )
    assert len(ours_frames) == 8
    assert ours_frames == their_frames
    assert path(ours) == path(theirs)
    # Pinned: v1 (the SDK's Vertex default is v1beta1).
    assert ours.route.version == "v1"
    assert theirs.route.version == "v1beta1"


# ------------------------------------------------------- per model family

REQUESTED = LiveConfig(
    model=GEMINI_MODEL,
    voice="Kore",
    system_instruction="You are a Home Assistant voice assistant.",
    temperature=0.7,
    thinking_budget=512,
    thinking_level="LOW",
    affective_dialog=True,
    proactive_audio=True,
    non_blocking_tools=True,
    functions=FULL_CONFIG.functions,
    google_search=True,
    activity_detection=FULL_CONFIG.activity_detection,
)
"""Every setting a family may take, asked for at once (the family filters)."""


def sdk_config(
    *,
    thinking: types.ThinkingConfig | None = None,
    affective: bool = False,
    proactive: bool = False,
    behavior: types.Behavior | None = None,
) -> types.LiveConnectConfig:
    """Return the SDK's config of `REQUESTED`, with the given family settings."""
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore")
            )
        ),
        system_instruction=REQUESTED.system_instruction,
        temperature=REQUESTED.temperature,
        thinking_config=thinking,
        enable_affective_dialog=True if affective else None,
        proactivity=types.ProactivityConfig(proactive_audio=True)
        if proactive
        else None,
        tools=[
            types.Tool(
                function_declarations=[
                    declaration.model_copy(update={"behavior": behavior})
                    for declaration in FULL_SDK_CONFIG.tools[0].function_declarations  # type: ignore[index, union-attr]
                ]
            ),
            types.Tool(google_search=types.GoogleSearch()),
        ],
        realtime_input_config=FULL_SDK_CONFIG.realtime_input_config,
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()
        ),
    )


SDK_REQUESTED = sdk_config(
    thinking=types.ThinkingConfig(
        thinking_budget=512, thinking_level=types.ThinkingLevel.LOW
    ),
    affective=True,
    proactive=True,
    behavior=types.Behavior.NON_BLOCKING,
)
THINKING_LEVEL = types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)
NOT_ON_3X = ("generationConfig.enableAffectiveDialog", "proactivity")


@dataclass(frozen=True, slots=True, kw_only=True)
class FamilyCase:
    """What one family takes of `REQUESTED` (reference 2.1, 7.1, 7.5)."""

    family: str
    model: str
    sdk: types.LiveConnectConfig
    """The SDK config of the settings the family accepts."""
    filtered: tuple[str, ...]
    """Setup fields (dotted camelCase) the SDK sends for `REQUESTED`, we not."""
    version: str


FAMILY_CASES = [
    # No thinkingConfig, affective dialog removed, proactive audio always on;
    # NON_BLOCKING is the default, BLOCKING optional: declared explicitly.
    FamilyCase(
        family="3.8",
        model="gemini-3.8-live",
        sdk=sdk_config(behavior=types.Behavior.NON_BLOCKING),
        filtered=("generationConfig.thinkingConfig", *NOT_ON_3X),
        version="v1beta",
    ),
    # A thinking level; NON_BLOCKING only, so no behavior is declared.
    FamilyCase(
        family="3.8-extended-thinking",
        model="gemini-3.8-live-extended-thinking",
        sdk=sdk_config(thinking=THINKING_LEVEL),
        filtered=(
            "generationConfig.thinkingConfig.thinkingBudget",
            *NOT_ON_3X,
            "tools.functionDeclarations.behavior",
        ),
        version="v1beta",
    ),
    # A thinking level; synchronous calls only (NON_BLOCKING not sent).
    FamilyCase(
        family="3.1",
        model="gemini-3.1-flash-live-preview",
        sdk=sdk_config(thinking=THINKING_LEVEL),
        filtered=(
            "generationConfig.thinkingConfig.thinkingBudget",
            *NOT_ON_3X,
            "tools.functionDeclarations.behavior",
        ),
        version="v1beta",
    ),
    # A thinking budget; affective dialog and proactive audio on v1alpha.
    FamilyCase(
        family="2.5",
        model=GEMINI_MODEL,
        sdk=sdk_config(
            thinking=types.ThinkingConfig(thinking_budget=512),
            affective=True,
            proactive=True,
            behavior=types.Behavior.NON_BLOCKING,
        ),
        filtered=("generationConfig.thinkingConfig.thinkingLevel",),
        version="v1alpha",
    ),
]


def drop(setup: dict[str, Any], field: str) -> None:
    """Remove a dotted field from `setup`, walking into lists."""
    *parents, last = field.split(".")
    nodes: list[Any] = [setup]
    for key in parents:
        found = [node[key] for node in nodes if key in node]
        nodes = [
            n for item in found for n in (item if isinstance(item, list) else [item])
        ]
    for node in nodes:
        node.pop(last, None)


async def drive_sdk_setup(
    server: FakeLiveServer, model: str, config: types.LiveConnectConfig
) -> Connection:
    """Send the SDK's setup for `config`; return the connection, accepted or not."""

    async def nothing(_: Any) -> None:
        return None

    sdk = sdk_client(server, api_key=server.api_key)
    # The server may close on a field the family rejects: the frame is kept.
    with contextlib.suppress(errors.APIError, websockets.ConnectionClosed):
        await drive_sdk(sdk, model, config, nothing)
    conn = server.connections[-1]
    await conn.wait_closed()
    return conn


@pytest.mark.parametrize("case", FAMILY_CASES, ids=lambda case: case.family)
async def test_family_setup(
    fake_live: FakeLiveServer, gemini: LiveClient, case: FamilyCase
) -> None:
    """Per family: the SDK's frame for the settings the family accepts.

    For the settings it does not accept, the SDK's frame carries the field
    and ours does not; nothing else differs.
    """
    fake_live.strict_families = True
    config = replace(REQUESTED, model=case.model)
    assert model_family(case.model).name == case.family

    async def nothing(_: Any) -> None:
        return None

    await drive_ours(gemini, config, nothing)
    sdk = sdk_client(fake_live, api_version=case.version, api_key=fake_live.api_key)
    await drive_sdk(sdk, case.model, case.sdk, nothing)
    ours, theirs = await compare(fake_live)
    for conn in (ours, theirs):
        assert conn.setup_complete_sent
        assert conn.unverified_fields == []
        assert conn.search_with_functions
    assert gemini.endpoint.version_for(config) == case.version
    assert theirs.route.version == case.version

    # The SDK sends every requested field, and the family's rules close on
    # one of those we filter.
    unfiltered = await drive_sdk_setup(fake_live, case.model, SDK_REQUESTED)
    assert unfiltered.rejected_field in case.filtered
    requested, setup = frames(unfiltered)[0]["setup"], frames(ours)[0]["setup"]
    for field in case.filtered:
        assert values_at(requested, field), field
        assert not values_at(setup, field), field
        drop(requested, field)
    assert requested == setup
