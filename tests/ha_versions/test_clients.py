"""Both Home Assistant versions, driven as the frontend, the apps and satellites do.

Each test runs on 2026.10.4 and on 2026.11.0 (the `home` fixture), and
checks what a user gets: the transcript, the whole answer, the chat log the
Assist dialog shows, real entity states, the reply audio. Where the versions
differ (2026.11's conversation owners, its TTS passthrough) each one's
behaviour is asserted.
"""

from __future__ import annotations

import io
import subprocess
from typing import Any
import wave

import pytest

from custom_components.gemini_live.tts_format import output_format
from custom_components.gemini_live.voice.config import TRANSCRIPTION_INSTRUCTION
from tests.fake_live import (
    Connection,
    FakeLiveServer,
    Reply,
    ToolCall,
    UserTurn,
    recognize,
    speech,
)
from tests.instance import HomeAssistantClient, Owner, PipelineRun, sign_in

from .conftest import Home, chat_log, said, watch_chat_log

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(300)]

SATELLITES: dict[str, dict[str, Any]] = {
    "esphome": {
        "preferred_format": "wav",
        "preferred_sample_rate": 16000,
        "preferred_sample_channels": 1,
        "preferred_sample_bytes": 2,
    },
    "wyoming": {
        "preferred_format": "wav",
        "preferred_sample_rate": 22050,
        "preferred_sample_channels": 1,
        "preferred_sample_bytes": 2,
    },
    "voice_pe": {
        "preferred_format": "flac",
        "preferred_sample_rate": 48000,
        "preferred_sample_channels": 1,
        "preferred_sample_bytes": 2,
    },
}
"""The TTS options each satellite asks for (ha-pipeline-levers.md A.2)."""
FFMPEG_DECODE = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0"]


def conversation_of(run: PipelineRun) -> str:
    """Return the run's conversation id."""
    return str(run.of("run-start")[0]["conversation_id"])


def declared(connection: Connection, intent: str) -> str:
    """Return the name the session declared an intent's tool under.

    2026.10 prefixes every tool of a merged LLM API with its API
    ("intent__HassTurnOff"); 2026.11 only tools whose names clash.
    """
    names = [
        function["name"]
        for tool in connection.tools
        for function in tool.get("functionDeclarations", ())
        if function["name"].split("__")[-1] == intent
    ]
    assert len(names) == 1, names
    return str(names[0])


def wav_pcm(data: bytes) -> tuple[int, int, int, bytes]:
    """Return the rate, channels, sample width and frames of a (streamed) WAV."""
    with wave.open(io.BytesIO(data)) as wav:
        return (
            wav.getframerate(),
            wav.getnchannels(),
            wav.getsampwidth(),
            wav.readframes(1 << 30),
        )


async def test_config_flow_made_a_preferred_assistant(home: Home) -> None:
    """The REST config flow made a loaded entry whose entities form the pipeline."""
    client, assistant = home.client, home.assistant
    entries = await client.command("config_entries/get", domain="gemini_live")
    assert [(e["entry_id"], e["state"]) for e in entries] == [
        (assistant.entry_id, "loaded")
    ]
    subentries = await client.command(
        "config_entries/subentries/list", entry_id=assistant.entry_id
    )
    assert [s["subentry_type"] for s in subentries] == ["conversation"]
    pipelines = await client.command("assist_pipeline/pipeline/list")
    assert pipelines["preferred_pipeline"] == assistant.pipeline_id
    for entity_id in (
        assistant.stt_entity,
        assistant.conversation_entity,
        assistant.tts_entity,
    ):
        assert (await client.state(entity_id))["state"] != "unavailable"


async def test_browser_voice_request_switches_a_light(
    home: Home, fake: FakeLiveServer
) -> None:
    """Speech over the WebSocket: transcript, tool effect, answer, audio, chat log.

    The Live session is opened with the signed-in user (the instructions name
    them); the chat log holds the request and the whole answer once: no
    audio trigger, nothing recorded twice by 2026.11's pipeline.
    """
    client = home.client
    assert (await client.state("light.kitchen_lights"))["state"] == "on"

    def turn_off(user: UserTurn) -> Reply:
        name = declared(user.connection, "HassTurnOff")
        return Reply(
            text="Sure.",
            tool_calls=[ToolCall(name=name, args={"name": "Kitchen Lights"})],
            then=lambda responses: Reply(text="The kitchen lights are off."),
        )

    fake.responder = turn_off

    run = await client.run_pipeline(speech("turn off the kitchen lights", 16000))

    assert run.error is None, run.error
    assert run.heard == "turn off the kitchen lights"
    assert run.speech == "The kitchen lights are off."
    await client.wait_state("light.kitchen_lights", "off")
    content_type, data = await client.fetch(run.tts_url)
    assert content_type == "audio/x-wav"
    rate, channels, width, pcm = wav_pcm(data)
    assert (rate, channels, width) == (24000, 1, 2)
    assert recognize(pcm, 24000) == "Sure. The kitchen lights are off."
    content = await chat_log(client, conversation_of(run))
    assert said(content) == [
        ("user", "turn off the kitchen lights"),
        ("assistant", "Sure."),
        ("assistant", "The kitchen lights are off."),
    ]
    calls = [c["tool_name"] for m in content for c in m.get("tool_calls") or ()]
    assert calls == [declared(fake.connections[-1], "HassTurnOff")]
    assert [m["role"] for m in content].count("tool_result") == 1
    session = fake.connections[-1]
    assert f"talking to {home.owner.name}." in (session.system_instruction or "")


async def test_typed_request(home: Home, fake: FakeLiveServer) -> None:
    """conversation/process: the answer, once, in the chat log."""
    fake.queue_reply(Reply(text="It is noon."))

    result = await home.client.process(
        "what time is it", agent_id=home.assistant.conversation_entity
    )

    assert result["response"]["speech"]["plain"]["speech"] == "It is noon."
    content = await chat_log(home.client, result["conversation_id"])
    assert said(content) == [("user", "what time is it"), ("assistant", "It is noon.")]
    session = fake.connections[-1]
    assert f"talking to {home.owner.name}." in (session.system_instruction or "")


async def test_voice_goes_on_with_a_conversation_of_another_agent(
    home: Home, fake: FakeLiveServer
) -> None:
    """Speech continues a conversation Home Assistant's own agent began.

    The STT entity opens the Live session with the chat log so far, read
    without opening a turn of it: the request is not busy, and the Assist
    dialog's subscription is told only of this request's changes (2026.11
    tells subscribers of every turn opened).
    """
    client = home.client
    first = await client.process(
        "what time is it", agent_id="conversation.home_assistant"
    )
    conversation_id = first["conversation_id"]
    answer = first["response"]["speech"]["plain"]["speech"]
    assert answer
    fake.queue_reply(Reply(text="It is Wednesday."))
    heard = "and what day is it"

    async with watch_chat_log(client, conversation_id) as watch:
        run = await client.run_pipeline(
            speech(heard, 16000), conversation_id=conversation_id
        )
        content = await chat_log(client, conversation_id)

    assert run.error is None, run.error
    assert (run.heard, run.speech) == (heard, "It is Wednesday.")
    history = [(turn.role, turn.text) for turn in fake.connections[-1].history]
    assert history[:2] == [("user", "what time is it"), ("model", answer)]
    assert said(content) == [
        ("user", "what time is it"),
        ("assistant", answer),
        ("user", heard),
        ("assistant", "It is Wednesday."),
    ]
    updates = [e for e in watch.events if e["event_type"] == "updated"]
    assert updates  # the turn's end
    for update in updates:
        assert ("user", heard) in said(update["data"]["chat_log"]["content"])


async def add_user(client: HomeAssistantClient, name: str) -> Owner:
    """Create a local (non-admin) user with a login; return its credentials."""
    created = await client.command(
        "config/auth/create", name=name, group_ids=["system-users"], local_only=True
    )
    user = Owner.create()
    user = Owner(name=name, username=name.lower(), password=user.password)
    await client.command(
        "config/auth_provider/homeassistant/create",
        user_id=created["user"]["id"],
        username=user.username,
        password=user.password,
    )
    return user


async def test_another_user_cannot_speak_into_the_owners_conversation(
    home: Home, fake: FakeLiveServer
) -> None:
    """2026.11's owners: another user's speech never reaches the owner's session.

    On 2026.11 Home Assistant refuses the guest at the intent stage
    (intent-unauthorized); the speech was only transcribed, in a session of
    its own, so the owner goes on at once with their own answer. 2026.10 has
    no owners: the guest simply continues the conversation.
    """
    client = home.client
    replies = {
        "what time is it": "It is noon.",
        "and what day is it": "It is Wednesday.",
        "what did I ask": "You asked the time.",
    }
    fake.responder = lambda user: Reply(text=replies[user.heard or user.text or ""])
    first = await client.process(
        "what time is it", agent_id=home.assistant.conversation_entity
    )
    conversation_id = first["conversation_id"]
    owners = fake.connections[-1]
    guest = await add_user(client, "Guest")
    token = await sign_in(home.instance.url, guest)

    async with HomeAssistantClient(home.instance.url, token) as guest_client:
        run = await guest_client.run_pipeline(
            speech("and what day is it", 16000), conversation_id=conversation_id
        )

    if not home.passes_through:  # 2026.10
        assert run.error is None, run.error
        assert run.speech == "It is Wednesday."
        assert [turn.heard for turn in owners.turns][1:] == ["and what day is it"]
        return
    assert run.error is not None
    assert run.error["code"] == "intent-unauthorized"
    assert len(owners.turns) == 1
    transcriber = fake.connections[-1]
    assert transcriber is not owners
    assert transcriber.system_instruction == TRANSCRIPTION_INSTRUCTION
    await transcriber.wait_closed()
    again = await client.process(
        "what did I ask",
        agent_id=home.assistant.conversation_entity,
        conversation_id=conversation_id,
    )
    assert again["response"]["speech"]["plain"]["speech"] == "You asked the time."
    assert said(await chat_log(client, conversation_id)) == [
        ("user", "what time is it"),
        ("assistant", "It is noon."),
        ("user", "what did I ask"),
        ("assistant", "You asked the time."),
    ]


def describe(data: bytes, extension: str) -> tuple[int, int, int]:
    """Return the rate, channels and bits per sample a WAV or FLAC header states."""
    if extension == "wav":
        rate, channels, width, _ = wav_pcm(data)
        return rate, channels, 8 * width
    assert data[:4] == b"fLaC"
    packed = int.from_bytes(data[18:26])
    return packed >> 44, ((packed >> 41) & 0x7) + 1, ((packed >> 36) & 0x1F) + 1


def decoded_seconds(data: bytes, rate: int) -> float:
    """Decode a stream with ffmpeg; return how long its audio is."""
    pcm = subprocess.run(  # noqa: S603 - fixed arguments
        [*FFMPEG_DECODE, "-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"],
        input=data,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return len(pcm) / 2 / rate


@pytest.mark.parametrize("satellite", list(SATELLITES))
async def test_tts_proxy_serves_a_satellites_format(
    home: Home, fake: FakeLiveServer, satellite: str
) -> None:
    """Text spoken in a satellite's format, through /api/tts_get_url and the proxy.

    2026.11 passes the entity's stream through: no ffmpeg runs, and the
    bytes served are exactly this integration's own encoding of the speech
    (PCM16 WAV, or FLAC for Voice PE). 2026.10 converts the entity's float64
    WAV with ffmpeg into the same format (sample-exact for WAV).
    """
    options = SATELLITES[satellite]
    message = f"The {satellite.replace('_', ' ')} timer is done."
    pcm = speech(message, 24000)
    runs = len(home.ffmpeg_runs())

    url = await home.client.rest(
        "POST",
        "/api/tts_get_url",
        {
            "engine_id": home.assistant.tts_entity,
            "message": message,
            "language": "en",
            "options": options,
        },
    )
    content_type, data = await home.client.fetch(url["path"])
    converted = [run for run in home.ffmpeg_runs()[runs:] if "-i pipe:0" in run]

    stream = output_format(options, passthrough=True)
    assert (
        content_type == {"wav": "audio/x-wav", "flac": "audio/flac"}[stream.extension]
    )
    assert describe(data, stream.extension) == (stream.rate, 1, 16)
    seconds = decoded_seconds(data, stream.rate)
    assert abs(seconds - len(pcm) / 2 / 24000) < 0.03
    encoder = stream.encoder()
    ours = encoder.header() + encoder.encode(pcm) + encoder.flush()
    if home.passes_through:
        assert converted == []
        assert data == ours
    else:
        assert len(converted) == 1
        assert f"-f wav -probesize 32 -i pipe:0 -f {stream.extension}" in converted[0]
        assert (data == ours) is (stream.extension == "wav")


async def test_tts_speak_plays_on_a_media_player(
    home: Home, fake: FakeLiveServer
) -> None:
    """tts.speak: the player gets the TTS media, whose audio is Gemini's speech."""
    message = "The washing machine is done."
    player = "media_player.living_room"

    await home.client.call_service(
        "tts",
        "speak",
        {
            "entity_id": home.assistant.tts_entity,
            "media_player_entity_id": player,
            "message": message,
        },
    )

    media_id = (await home.client.state(player))["attributes"]["media_content_id"]
    assert media_id.startswith(f"media-source://tts/{home.assistant.tts_entity}")
    resolved = await home.client.command(
        "media_source/resolve_media", media_content_id=media_id
    )
    content_type, data = await home.client.fetch(resolved["url"])
    assert content_type == "audio/x-wav"
    rate, channels, width, pcm = wav_pcm(data)
    assert (rate, channels, width) == (24000, 1, 2)
    assert recognize(pcm, 24000) == message
    assert [call.text for call in fake.speech.syntheses][-1] == message


async def test_no_warning_of_the_integration(home: Home) -> None:
    """After all of the above, the log has no warning or error of the integration.

    On 2026.11 this includes its deprecation reports (e.g. a chat session
    opened without a context).
    """
    lines = [
        line
        for line in home.instance.log_text().splitlines()
        if "gemini_live" in line
        and (" WARNING " in line or " ERROR " in line)
        and "has not been tested by Home Assistant" not in line
    ]
    assert lines == []
