"""The gemini_live.ask action, end to end: automations, cameras, speakers, errors.

Real Home Assistant (automation, camera, media_player, media_source, the
assistant's entities) and the real client on the fake Live server. The fake
model answers from the frames it received: it names the colour of the JPEG
it was shown, so an answer about the picture proves the picture arrived.
"""

from __future__ import annotations

import asyncio
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from homeassistant.components import conversation, media_source, tts
from homeassistant.components.camera import Camera
from homeassistant.components.media_player import (
    MediaPlayerEntity,
    MediaPlayerEntityFeature,
    MediaPlayerState,
)
from homeassistant.const import CONF_PROMPT
from homeassistant.core import (
    Context,
    Event,
    HomeAssistant,
    ServiceResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service import async_get_all_descriptions
from homeassistant.setup import async_setup_component
from PIL import Image
import pytest
import pytest_asyncio
from pytest_homeassistant_custom_component.common import (
    setup_test_component_platform,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.gemini_live import actions
from custom_components.gemini_live.audio import SampleFormat, wav_header
from custom_components.gemini_live.const import DOMAIN, RECOMMENDED_OPTIONS
from custom_components.gemini_live.images import MAX_IMAGE_BYTES
from tests.fake_live import Close, Reply, UserTurn, recognize
from tests.fake_live.connection import VideoFrame
from tests.voice import conftest as harness
from tests.voice.conftest import Voice
from tests.voice.satellite import async_setup_satellite

voice = harness.voice
entry_options = harness.entry_options

PROMPT = "What colour is the parcel at the door?"
COLOURS = {(255, 0, 0): "red", (0, 0, 255): "blue"}
RATE = 24000
PCM16_HEADER = wav_header(RATE, SampleFormat.PCM16)


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    """Return a JPEG of one colour."""
    out = BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=95)
    return out.getvalue()


RED = jpeg((255, 0, 0))
BLUE = jpeg((0, 0, 255))


def colour_of(data: bytes) -> str:
    """Name the colour of a one-colour image (what the fake model "sees")."""
    pixel = Image.open(BytesIO(data)).convert("RGB").getpixel((8, 8))
    assert isinstance(pixel, tuple)
    return min(
        COLOURS.items(),
        key=lambda item: sum((a - b) ** 2 for a, b in zip(item[0], pixel, strict=True)),
    )[1]


def answer_from_frames(turn: UserTurn) -> Reply:
    """Answer as the fake model: describe the frames shown before this turn."""
    frames = [f for f in turn.connection.video_frames if f.turn == turn.index]
    if not frames:
        return Reply(text="I cannot see anything.")
    colours = " and ".join(colour_of(frame.data) for frame in frames)
    return Reply(text=f"The parcel is {colours}.")


class FrontDoor(Camera):
    """A camera that serves a fixed JPEG (or none)."""

    _attr_name = "Front door"

    def __init__(self, image: bytes | None) -> None:
        """Serve `image`."""
        super().__init__()
        self.image = image

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """Return the image."""
        return self.image


class Speaker(MediaPlayerEntity):
    """A media player that records what it is asked to play."""

    _attr_name = "Kitchen"
    _attr_state = MediaPlayerState.IDLE
    _attr_supported_features = (
        MediaPlayerEntityFeature.PLAY_MEDIA | MediaPlayerEntityFeature.MEDIA_ANNOUNCE
    )

    def __init__(self) -> None:
        """Start with nothing played."""
        self.played: list[tuple[str, dict[str, Any]]] = []

    async def async_play_media(
        self, media_type: str, media_id: str, **kwargs: Any
    ) -> None:
        """Record the media id and the options."""
        self.played.append((media_id, kwargs))


@pytest.fixture
def camera() -> FrontDoor:
    """Return the front door camera (red)."""
    return FrontDoor(RED)


@pytest_asyncio.fixture
async def home(voice: Voice, camera: FrontDoor, tmp_path: Path) -> Speaker:
    """Add the camera, the kitchen speaker, media sources and a www folder."""
    hass = voice.hass
    voice.server.responder = answer_from_frames
    (tmp_path / "www").mkdir()
    (tmp_path / "media").mkdir()
    hass.config.media_dirs = {"local": str(tmp_path / "media")}
    speaker = Speaker()
    setup_test_component_platform(hass, "camera", [camera])
    setup_test_component_platform(hass, "media_player", [speaker])
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    assert await async_setup_component(
        hass, "media_player", {"media_player": {"platform": "test"}}
    )
    assert await async_setup_component(hass, "media_source", {})
    await hass.async_block_till_done()
    return speaker


async def ask(voice: Voice, **data: Any) -> ServiceResponse:
    """Call gemini_live.ask on the voice fixture's assistant."""
    return await voice.hass.services.async_call(
        DOMAIN,
        "ask",
        {"agent": voice.conversation_entity, **data},
        blocking=True,
        return_response=True,
    )


async def heard(
    hass: HomeAssistant, client: ClientSessionGenerator, media_id: str
) -> str | None:
    """Fetch a played media id or URL and recognise its speech."""
    if media_source.is_media_source_id(media_id):
        media_id = (await media_source.async_resolve_media(hass, media_id, None)).url
    response = await (await client()).get(urlsplit(media_id).path)
    assert response.status == 200
    data = await response.read()
    assert data.startswith(PCM16_HEADER)
    return recognize(data[len(PCM16_HEADER) :], RATE)


def usage_sent(voice: Voice) -> dict[str, int]:
    """Return the tokens the fake reported on its last connection."""
    reports = [
        m["usageMetadata"]
        for m in voice.server.connections[-1].sent
        if "usageMetadata" in m
    ]
    return {
        "input": sum(r["promptTokenCount"] for r in reports),
        "output": sum(r["responseTokenCount"] for r in reports),
        "total": sum(r["totalTokenCount"] for r in reports),
    }


async def test_an_automation_asks_about_the_camera_and_speaks_the_answer(
    voice: Voice, home: Speaker, hass_client: ClientSessionGenerator
) -> None:
    """The frame reaches the model; the answer reaches the automation and the speaker."""
    hass = voice.hass
    answers: list[Event] = []
    answered = asyncio.Event()

    @callback
    def record(event: Event) -> None:
        answers.append(event)
        answered.set()

    hass.bus.async_listen("parcel_answer", record)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "alias": "Parcel check",
                "triggers": [{"trigger": "event", "event_type": "doorbell"}],
                "actions": [
                    {
                        "action": "gemini_live.ask",
                        "data": {
                            "agent": voice.conversation_entity,
                            "prompt": PROMPT,
                            "images": ["camera.front_door"],
                            "speak_on": ["media_player.kitchen"],
                        },
                        "response_variable": "answer",
                    },
                    {
                        "if": [
                            {
                                "condition": "template",
                                "value_template": "{{ 'red' in answer.text }}",
                            }
                        ],
                        "then": [
                            {
                                "event": "parcel_answer",
                                "event_data": {
                                    "branch": "red",
                                    "text": "{{ answer.text }}",
                                    "conversation_id": "{{ answer.conversation_id }}",
                                    "usage": "{{ answer.usage }}",
                                },
                            }
                        ],
                        "else": [
                            {
                                "event": "parcel_answer",
                                "event_data": {"branch": "other"},
                            }
                        ],
                    },
                ],
            }
        },
    )

    hass.bus.async_fire("doorbell")
    async with asyncio.timeout(15):
        await answered.wait()

    conn = voice.server.connections[-1]
    assert conn.video_frames == [VideoFrame(mime_type="image/jpeg", data=RED, turn=0)]
    assert [turn.text for turn in conn.turns] == [PROMPT]
    (event,) = answers
    assert event.data["branch"] == "red"
    assert event.data["text"] == "The parcel is red."
    assert event.data["conversation_id"]
    assert event.data["usage"] == usage_sent(voice)
    assert event.data["usage"]["total"] > 0
    (played,) = home.played
    media_id, options = played
    assert options["announce"] is True
    assert await heard(hass, hass_client, media_id) == "The parcel is red."
    assert len(voice.server.connections) == 2  # the turn's own audio: no re-read


async def test_the_conversation_goes_on_in_the_same_live_session(
    voice: Voice, home: Speaker
) -> None:
    """A second ask with the first's conversation_id: same session, same chat log."""
    first = await ask(voice, prompt=PROMPT, images=["camera.front_door"])
    second = await ask(
        voice, prompt="And now?", conversation_id=first["conversation_id"]
    )

    assert first["text"] == "The parcel is red."
    assert second["text"] == "I cannot see anything."  # no frame this time
    assert second["conversation_id"] == first["conversation_id"]
    usage = first["usage"], second["usage"]
    assert {key: sum(u[key] for u in usage) for key in usage[0]} == usage_sent(voice)
    conn = voice.server.connections[-1]
    assert len(voice.server.connections) == 2  # the setup check, then one session
    assert [turn.text for turn in conn.turns] == [PROMPT, "And now?"]
    log = voice.chat_log(str(first["conversation_id"]))
    assert [(c.role, c.content) for c in log[1:]] == [
        ("user", PROMPT),
        ("assistant", "The parcel is red."),
        ("user", "And now?"),
        ("assistant", "I cannot see anything."),
    ]


async def test_an_assist_conversation_is_continued(voice: Voice, home: Speaker) -> None:
    """An ask continues a conversation typed in Assist, in its Live session."""
    typed = await conversation.async_converse(
        voice.hass, "Hello", None, Context(), agent_id=voice.conversation_entity
    )
    answer = await ask(
        voice,
        prompt=PROMPT,
        images=["camera.front_door"],
        conversation_id=typed.conversation_id,
    )

    assert answer["conversation_id"] == typed.conversation_id
    conn = voice.server.connections[-1]
    assert [turn.text for turn in conn.turns] == ["Hello", PROMPT]
    assert [f.turn for f in conn.video_frames] == [1]


async def test_images_from_files_and_media_in_order(
    voice: Voice, home: Speaker, tmp_path: Path
) -> None:
    """A www file (by path and by /local/ URL) and a local media file, in order."""
    (tmp_path / "www" / "red.jpg").write_bytes(RED)
    (tmp_path / "www" / "blue.jpg").write_bytes(BLUE)
    (tmp_path / "media" / "parcel.jpg").write_bytes(RED)

    answer = await ask(
        voice,
        prompt=PROMPT,
        images=[
            str(tmp_path / "www" / "red.jpg"),
            "/local/blue.jpg",
            {
                "media_content_id": "media-source://media_source/local/parcel.jpg",
                "media_content_type": "image/jpeg",
            },
        ],
    )

    assert answer["text"] == "The parcel is red and blue and red."
    conn = voice.server.connections[-1]
    assert [(f.mime_type, f.data) for f in conn.video_frames] == [
        ("image/jpeg", RED),
        ("image/jpeg", BLUE),
        ("image/jpeg", RED),
    ]


async def test_the_answer_is_announced_on_a_satellite(
    voice: Voice, home: Speaker, hass_client: ClientSessionGenerator
) -> None:
    """speak_on a satellite: an announcement of the answer in the assistant's voice."""
    satellite = await async_setup_satellite(voice.hass, voice)

    answer = await ask(
        voice,
        prompt=PROMPT,
        images=["camera.front_door"],
        speak_on=[satellite.entity_id],
    )

    (announcement,) = satellite.announcements
    assert announcement.message == answer["text"] == "The parcel is red."
    assert await heard(voice.hass, hass_client, announcement.media_id) == answer["text"]


@pytest.mark.parametrize(
    "entry_options",
    [{**RECOMMENDED_OPTIONS, CONF_PROMPT: "Answer in {{ llm_context.language }}."}],
)
async def test_the_language_reaches_the_session(voice: Voice, home: Speaker) -> None:
    """The language field is the request's: the instructions are rendered with it."""
    await ask(voice, prompt="Xin chào", language="vi")

    instruction = voice.server.connections[-1].system_instruction or ""
    assert instruction.startswith("Answer in vi.")


async def test_the_action_is_described(voice: Voice) -> None:
    """Home Assistant describes the action (services.yaml) and its response."""
    descriptions = await async_get_all_descriptions(voice.hass)

    ask_action = descriptions[DOMAIN]["ask"]
    assert ask_action["fields"]["agent"]["required"] is True
    assert set(ask_action["fields"]) == {
        "agent",
        "prompt",
        "images",
        "conversation_id",
        "speak_on",
        "language",
    }
    assert ask_action["response"] == {"optional": True}


async def test_no_response_requested(voice: Voice, home: Speaker) -> None:
    """Without return_response the action only speaks (and returns nothing)."""
    result = await voice.hass.services.async_call(
        DOMAIN,
        "ask",
        {
            "agent": voice.conversation_entity,
            "prompt": PROMPT,
            "speak_on": "media_player.kitchen",
        },
        blocking=True,
    )

    assert result is None
    assert len(home.played) == 1


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"agent": "conversation.nobody"}, "agent_not_found"),
        ({"agent": "conversation.home_assistant"}, "agent_not_found"),
        ({"images": ["camera.back_door"]}, "camera_not_found"),
        ({"images": ["media-source://camera/camera.back_door"]}, "camera_not_found"),
        ({"images": ["/local/missing.jpg"]}, "image_not_found"),
        ({"images": ["/local/parcel.png"]}, "image_unsupported"),
        ({"images": ["/local/huge.jpg"]}, "image_too_large"),
        ({"images": ["/local/../secrets.yaml"]}, "path_not_allowed"),
        ({"images": ["/etc/hostname"]}, "path_not_allowed"),
        ({"images": ["media-source://media_source/local/none.jpg"]}, "image_not_found"),
        ({"speak_on": ["media_player.garage"]}, "speaker_not_found"),
    ],
)
async def test_invalid_requests_are_refused_before_asking(
    voice: Voice,
    home: Speaker,
    tmp_path: Path,
    data: dict[str, Any],
    key: str,
) -> None:
    """Each invalid input: its translated error, and no Live session opened."""
    out = BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG")
    (tmp_path / "www" / "parcel.png").write_bytes(out.getvalue())
    (tmp_path / "www" / "huge.jpg").write_bytes(RED + bytes(MAX_IMAGE_BYTES))
    (tmp_path / "secrets.yaml").write_text("key: value\n")
    connections = len(voice.server.connections)

    with pytest.raises(ServiceValidationError) as err:
        await ask(voice, **{"prompt": PROMPT, **data})

    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == key
    assert len(voice.server.connections) == connections


async def test_speak_on_needs_the_assistants_tts_entity(
    voice: Voice, home: Speaker
) -> None:
    """With the assistant's TTS entity disabled, speak_on is refused unasked."""
    er.async_get(voice.hass).async_update_entity(
        voice.tts_entity, disabled_by=er.RegistryEntryDisabler.USER
    )
    await voice.hass.async_block_till_done()  # the entry reloads without it
    connections = len(voice.server.connections)

    with pytest.raises(ServiceValidationError) as err:
        await ask(voice, prompt=PROMPT, speak_on=[home.entity_id])

    assert err.value.translation_key == "tts_unavailable"
    assert len(voice.server.connections) == connections


async def test_media_that_is_not_a_file_is_refused(voice: Voice, home: Speaker) -> None:
    """A media source item without a local file (a TTS message) is refused."""
    voice.server.speech.serve()  # resolving it synthesises the message
    media_id = tts.generate_media_source_id(
        voice.hass, "Hello", engine=voice.tts_entity
    )

    with pytest.raises(ServiceValidationError) as err:
        await ask(voice, prompt=PROMPT, images=[media_id])

    assert err.value.translation_key == "image_not_local"


async def test_a_camera_without_an_image(
    voice: Voice, home: Speaker, camera: FrontDoor
) -> None:
    """A camera that gives no snapshot: a translated error."""
    camera.image = None

    with pytest.raises(HomeAssistantError) as err:
        await ask(voice, prompt=PROMPT, images=["camera.front_door"])

    assert err.value.translation_key == "camera_no_image"
    assert err.value.translation_placeholders["camera"] == "camera.front_door"


@pytest.mark.parametrize(
    "close", [Close.internal(), Close.quota()], ids=["internal", "quota"]
)
async def test_a_live_failure_is_a_translated_error(
    voice: Voice, home: Speaker, close: Close
) -> None:
    """The Live session fails before answering: ask_failed, nothing spoken."""
    voice.server.responder = None
    voice.server.queue_reply(Reply(text="Never heard.", close=close))

    with pytest.raises(HomeAssistantError) as err:
        await ask(voice, prompt=PROMPT, speak_on=["media_player.kitchen"])

    assert err.value.translation_key == "ask_failed"
    assert err.value.translation_placeholders["agent"] == voice.conversation_entity
    assert not home.played


async def test_an_unanswered_request_is_bounded(
    voice: Voice, home: Speaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No answer within the bound: ask_timeout, and the Live session is closed."""
    monkeypatch.setattr(actions, "ASK_TIMEOUT", 0.5)
    voice.server.responder = None
    voice.server.queue_reply(Reply(stall=True))

    with pytest.raises(HomeAssistantError) as err:
        await ask(voice, prompt=PROMPT)

    assert err.value.translation_key == "ask_timeout"
    conn = voice.server.connections[-1]
    assert await conn.wait_closed() is not None
    assert conn.closed_by == "client"
