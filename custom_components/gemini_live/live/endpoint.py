"""Where to connect: WebSocket and speech URLs, model resource names per provider."""

from __future__ import annotations

from dataclasses import dataclass
import re
from urllib.parse import urlsplit, urlunsplit

from .config import LiveConfig, Provider
from .errors import InvalidLocationError, LiveConnectionError, LiveInvalidArgumentError
from .models import model_family

GEMINI_HOST = "generativelanguage.googleapis.com"
# Pinned, never an SDK's default (google-genai 3.x uses v1, which has no
# BidiGenerateContent in the public protos): reference 1.1, 1.2, 8.16.
GEMINI_API_VERSION = "v1beta"
GEMINI_ALPHA_API_VERSION = "v1alpha"
"""For the setup fields a family lists in `alpha_api_for`."""
VERTEX_API_VERSION = "v1"
_GEMINI_PATH = (
    "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
)
_VERTEX_PATH = (
    "/ws/google.cloud.aiplatform.{version}.LlmBidiService/BidiGenerateContent"
)
_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_SPEECH_METHOD = ":streamGenerateContent?alt=sse"
SPEECH_LOCATION = "global"
"""Where Vertex AI serves the Gemini 3.8 TTS models (besides "us" and "eu")."""
_MULTI_REGIONS = frozenset({"us", "eu"})
# A region ("us-central1", "europe-west4") or a multi-region ("us", "eu").
_LOCATION = re.compile(r"[a-z]+(?:-[a-z]+[0-9]+)?")
_SEGMENT = re.compile(r"[^/\s]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveEndpoint:
    """A Live API endpoint: provider, optional base URL and Vertex project/location."""

    provider: Provider
    base_url: str | None = None
    project_id: str | None = None
    location: str | None = None
    api_version: str | None = None
    """Overrides the version `version_for` picks."""

    def version_for(self, config: LiveConfig | None = None) -> str:
        """Return the API version of a session with `config` (None: no setup).

        Vertex AI: v1. Developer API: v1beta, or v1alpha when the setup asks
        for a field the model's family serves only there.
        """
        if self.api_version:
            return self.api_version
        if self.provider is Provider.VERTEX_AI:
            return VERTEX_API_VERSION
        if config is not None and any(
            getattr(config, field) for field in model_family(config.model).alpha_api_for
        ):
            return GEMINI_ALPHA_API_VERSION
        return GEMINI_API_VERSION

    def websocket_url(self, config: LiveConfig | None = None) -> str:
        """Return the BidiGenerateContent URL of a session with `config`.

        Raises for a bad Vertex location.
        """
        version = self.version_for(config)
        if self.provider is Provider.VERTEX_AI:
            location = self._vertex_location()
            if location in _MULTI_REGIONS:
                host = f"aiplatform.{location}.rep.googleapis.com"
            else:
                host = f"{location}-aiplatform.googleapis.com"
            path = _VERTEX_PATH.format(version=version)
        else:
            host = GEMINI_HOST
            path = _GEMINI_PATH.format(version=version)
        if self.base_url is None:
            return f"wss://{host}{path}"
        return _base(self.base_url, _WS_SCHEMES) + path

    def speech_url(self, model: str) -> str:
        """Return the streamGenerateContent (SSE) URL of a TTS model.

        Developer API: v1beta. Vertex AI: v1 in the entry's multi-region ("us",
        "eu") or else "global", where the Gemini 3.8 TTS models are served
        (never a single region). Raises for a bad model name or Vertex project.
        """
        model_id = self.model_resource(model).rsplit("/", 1)[-1]
        if self.provider is Provider.VERTEX_AI:
            location = (self.location or "").strip()
            if location not in _MULTI_REGIONS:
                location = SPEECH_LOCATION
            host = (
                "aiplatform.googleapis.com"
                if location == SPEECH_LOCATION
                else f"aiplatform.{location}.rep.googleapis.com"
            )
            path = (
                f"/{VERTEX_API_VERSION}/projects/{self._vertex_project()}"
                f"/locations/{location}/publishers/google/models/{model_id}"
            )
        else:
            host = GEMINI_HOST
            path = f"/{GEMINI_API_VERSION}/models/{model_id}"
        base = (
            f"https://{host}"
            if self.base_url is None
            else _base(self.base_url, _HTTP_SCHEMES)
        )
        return f"{base}{path}{_SPEECH_METHOD}"

    def model_resource(self, model: str) -> str:
        """Return the ``setup.model`` resource name for a model id.

        Accepts a bare id, ``models/ID``, ``publishers/P/models/ID`` or (Vertex)
        a full ``projects/...`` name.
        """
        name = model.strip().strip("/")
        parts = name.split("/")
        if not name or not all(_SEGMENT.fullmatch(part) for part in parts):
            raise LiveInvalidArgumentError(f"Invalid model name {model!r}")
        if self.provider is not Provider.VERTEX_AI:
            return f"models/{parts[-1]}"
        if parts[0] == "projects":
            return name
        prefix = (
            f"projects/{self._vertex_project()}/locations/{self._vertex_location()}"
        )
        if parts[0] == "publishers":
            return f"{prefix}/{name}"
        return f"{prefix}/publishers/google/models/{parts[-1]}"

    def _vertex_location(self) -> str:
        location = (self.location or "").strip()
        if location == "global":
            raise InvalidLocationError(
                "The Live API is not served from the Vertex AI location 'global';"
                " choose a region such as us-central1 or europe-west4"
            )
        if not _LOCATION.fullmatch(location):
            raise InvalidLocationError(
                f"Invalid Vertex AI location {location!r}; use a region such as"
                " us-central1 or europe-west4"
            )
        return location

    def _vertex_project(self) -> str:
        project = (self.project_id or "").strip()
        if not _SEGMENT.fullmatch(project):
            raise LiveInvalidArgumentError(f"Invalid Vertex AI project id {project!r}")
        return project


def _base(base_url: str, schemes: dict[str, str]) -> str:
    """Give a base URL the scheme `schemes` maps it to, keeping its path prefix."""
    parts = urlsplit(base_url.strip())
    scheme = schemes.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise LiveConnectionError(
            f"Unsupported base URL {base_url!r}; use http(s):// or ws(s)://"
        )
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
