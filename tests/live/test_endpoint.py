"""WebSocket URLs and model resource names per provider."""

from dataclasses import fields

import pytest

from custom_components.gemini_live.live import (
    InvalidLocationError,
    LiveConfig,
    LiveConnectionError,
    LiveEndpoint,
    LiveInvalidArgumentError,
    Provider,
)
from custom_components.gemini_live.live.models import (
    GEMINI_2_5,
    GEMINI_3_1,
    GEMINI_3_8,
    GEMINI_3_8_EXTENDED_THINKING,
    UNKNOWN,
    ModelFamily,
)

GEMINI_PATH = (
    "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
)
VERTEX_PATH = "/ws/google.cloud.aiplatform.v1.LlmBidiService/BidiGenerateContent"


def vertex(location: str | None = "us-central1", **kwargs: str) -> LiveEndpoint:
    return LiveEndpoint(
        provider=Provider.VERTEX_AI, project_id="proj", location=location, **kwargs
    )


def test_gemini_default_url() -> None:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API)
    assert endpoint.websocket_url() == (
        "wss://generativelanguage.googleapis.com" + GEMINI_PATH
    )


def test_gemini_api_version() -> None:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, api_version="v1alpha")
    assert ".v1alpha.GenerativeService." in endpoint.websocket_url()


GEMINI_25 = "gemini-2.5-flash-native-audio-preview-12-2025"


@pytest.mark.parametrize(
    ("config", "version"),
    [
        (None, "v1beta"),
        (LiveConfig(model=GEMINI_25), "v1beta"),
        (LiveConfig(model=GEMINI_25, affective_dialog=True), "v1alpha"),
        (LiveConfig(model=f"models/{GEMINI_25}", proactive_audio=True), "v1alpha"),
        # Families that never send these fields stay on v1beta.
        (
            LiveConfig(
                model="gemini-3.8-live", affective_dialog=True, proactive_audio=True
            ),
            "v1beta",
        ),
        (
            LiveConfig(model="gemini-3.1-flash-live-preview", affective_dialog=True),
            "v1beta",
        ),
        (LiveConfig(model="gemini-9", proactive_audio=True), "v1beta"),
    ],
)
def test_gemini_version_pinned_per_setup(
    config: LiveConfig | None, version: str
) -> None:
    """v1beta, never an SDK default; v1alpha only for a family's alpha fields."""
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API)
    assert endpoint.version_for(config) == version
    assert endpoint.websocket_url(config) == (
        "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage."
        f"{version}.GenerativeService.BidiGenerateContent"
    )


def test_vertex_version_pinned() -> None:
    """Vertex AI: v1 whatever the setup asks for."""
    config = LiveConfig(model=GEMINI_25, affective_dialog=True, proactive_audio=True)
    assert vertex().version_for(config) == "v1"
    assert vertex().websocket_url(config).endswith(VERTEX_PATH)


def test_explicit_version_wins() -> None:
    config = LiveConfig(model=GEMINI_25, affective_dialog=True)
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, api_version="v1beta")
    assert endpoint.version_for(config) == "v1beta"


@pytest.mark.parametrize(
    "family",
    [GEMINI_3_8, GEMINI_3_8_EXTENDED_THINKING, GEMINI_3_1, GEMINI_2_5, UNKNOWN],
    ids=lambda family: family.name,
)
def test_alpha_fields_are_config_flags(family: ModelFamily) -> None:
    """Every `alpha_api_for` entry names a boolean LiveConfig field."""
    flags = {f.name for f in fields(LiveConfig) if f.type in ("bool", bool)}
    assert family.alpha_api_for <= flags


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("us-central1", "us-central1-aiplatform.googleapis.com"),
        ("europe-west4", "europe-west4-aiplatform.googleapis.com"),
        ("us", "aiplatform.us.rep.googleapis.com"),
        ("eu", "aiplatform.eu.rep.googleapis.com"),
        (" us-east1 ", "us-east1-aiplatform.googleapis.com"),
    ],
)
def test_vertex_hosts(location: str, host: str) -> None:
    assert vertex(location).websocket_url() == f"wss://{host}{VERTEX_PATH}"


def test_vertex_api_version() -> None:
    assert ".v1.LlmBidiService/" in vertex(api_version="v1").websocket_url()


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080"),
        ("https://proxy.example", "wss://proxy.example"),
        ("ws://host:1/", "ws://host:1"),
        ("wss://host/prefix/", "wss://host/prefix"),
        ("HTTPS://host/a/b?x=1", "wss://host/a/b"),
    ],
)
def test_base_url(base_url: str, expected: str) -> None:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=base_url)
    assert endpoint.websocket_url() == expected + GEMINI_PATH
    assert vertex(base_url=base_url).websocket_url() == expected + VERTEX_PATH


@pytest.mark.parametrize("base_url", ["ftp://host", "host:80", "http://", ""])
def test_bad_base_url(base_url: str) -> None:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=base_url)
    with pytest.raises(LiveConnectionError, match="Unsupported base URL"):
        endpoint.websocket_url()


def test_global_location_rejected() -> None:
    with pytest.raises(InvalidLocationError, match=r"'global'.*us-central1"):
        vertex("global").websocket_url()
    with pytest.raises(InvalidLocationError):
        vertex("global").model_resource("m")


@pytest.mark.parametrize(
    "location", [None, "", "  ", "US-CENTRAL1", "us-central1/x", "us_central1", "1us"]
)
def test_malformed_location_rejected(location: str | None) -> None:
    with pytest.raises(InvalidLocationError, match="Invalid Vertex AI location"):
        vertex(location).websocket_url()


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-x", "models/gemini-x"),
        ("models/gemini-x", "models/gemini-x"),
        (" models/gemini-x ", "models/gemini-x"),
        ("publishers/google/models/gemini-x", "models/gemini-x"),
    ],
)
def test_gemini_model_resource(model: str, expected: str) -> None:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API)
    assert endpoint.model_resource(model) == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("m", "projects/proj/locations/us-central1/publishers/google/models/m"),
        ("models/m", "projects/proj/locations/us-central1/publishers/google/models/m"),
        (
            "publishers/google/models/m",
            "projects/proj/locations/us-central1/publishers/google/models/m",
        ),
        (
            "projects/o/locations/eu/publishers/google/models/m",
            "projects/o/locations/eu/publishers/google/models/m",
        ),
    ],
)
def test_vertex_model_resource(model: str, expected: str) -> None:
    assert vertex().model_resource(model) == expected


@pytest.mark.parametrize("model", ["", " ", "models//x", "a b"])
def test_bad_model(model: str) -> None:
    with pytest.raises(LiveInvalidArgumentError, match="Invalid model"):
        LiveEndpoint(provider=Provider.GEMINI_API).model_resource(model)


@pytest.mark.parametrize("project", [None, "", "a/b"])
def test_bad_vertex_project(project: str | None) -> None:
    endpoint = LiveEndpoint(
        provider=Provider.VERTEX_AI, project_id=project, location="us-central1"
    )
    with pytest.raises(LiveInvalidArgumentError, match="project"):
        endpoint.model_resource("m")
