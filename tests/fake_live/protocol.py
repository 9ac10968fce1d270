"""Wire-format rules of the Live API: paths, models, case, setup validation."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from dataclasses import dataclass
import re
from typing import Any, Literal

from . import families
from .scenario import INVALID_ARGUMENT

type Provider = Literal["gemini_api", "vertex_ai"]

DEVELOPER_MODELS = families.served_models("gemini_api")
VERTEX_MODELS = families.served_models("vertex_ai")
VERTEX_LOCATIONS = frozenset(
    {
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west4",
        "europe-west1",
        "europe-west4",
        "europe-west9",
        "europe-north1",
        "europe-central2",
        "asia-northeast1",
        "asia-southeast1",
    }
)

_DEVELOPER_PATH = re.compile(
    r"/ws/google\.ai\.generativelanguage\.(v1beta|v1alpha|v1)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)"
)
_VERTEX_PATH = re.compile(
    r"/ws/google\.cloud\.aiplatform\.(v1|v1beta1)\.LlmBidiService/BidiGenerateContent"
)
_VERTEX_MODEL = re.compile(
    r"projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/]+)"
)

# Keys whose values are user data: kept verbatim (never re-cased).
VERBATIM_KEYS = frozenset(
    {
        "args",
        "response",
        "parameters",
        "parametersJsonSchema",
        "responseJsonSchema",
        "labels",
    }
)
CLIENT_MESSAGE_KEYS = frozenset(
    {"setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate"}
)
SETUP_KEYS = frozenset(
    {
        "model",
        "generationConfig",
        "systemInstruction",
        "tools",
        "realtimeInputConfig",
        "sessionResumption",
        "contextWindowCompression",
        "inputAudioTranscription",
        "outputAudioTranscription",
        "proactivity",
        "historyConfig",
        "explicitVadSignal",
        "safetySettings",
        "avatarConfig",
        "labels",
    }
)
MAX_REASON_BYTES = 123


@dataclass(frozen=True, slots=True)
class Route:
    """A Live endpoint recognised from the request path."""

    provider: Provider
    version: str
    method: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the server closes: a close code and the (untruncated) reason."""

    code: int
    reason: str
    field: str | None = None
    """The setup field (dotted camelCase path) that made the server refuse."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A validated setup.model."""

    resource: str
    model_id: str
    project: str | None = None
    location: str | None = None


def parse_path(path: str) -> Route | None:
    """Route for a request path (repeated slashes tolerated), else None."""
    path = re.sub("/{2,}", "/", path)
    if match := _DEVELOPER_PATH.fullmatch(path):
        return Route("gemini_api", match[1], match[2])
    if match := _VERTEX_PATH.fullmatch(path):
        return Route("vertex_ai", match[1], "BidiGenerateContent")
    return None


def truncate_reason(reason: str) -> str:
    """Cut a close reason to 123 UTF-8 bytes, as production does."""
    return (
        reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
        if len(reason.encode()) > MAX_REASON_BYTES
        else reason
    )


def camel(name: str) -> str:
    """snake_case -> lowerCamelCase (camelCase is returned unchanged)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def normalize(value: Any) -> Any:
    """Re-case every key to camelCase, except inside user data (VERBATIM_KEYS)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = camel(key)
            out[name] = item if name in VERBATIM_KEYS else normalize(item)
        return out
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


def decode_b64(data: str) -> bytes:
    """Decode standard or URL-safe base64, padding optional."""
    data = data.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except binascii.Error as err:
        raise ValueError("invalid base64") from err


def encode_b64(data: bytes) -> str:
    """Encode standard base64, as the server does."""
    return base64.b64encode(data).decode()


def pcm_rate(mime_type: str | None, default: int = 16000) -> int:
    """Return the rate of "audio/pcm;rate=16000" (`default` when absent)."""
    match = re.search(r"rate=(\d+)", mime_type or "")
    return int(match[1]) if match else default


def not_found(model: str, version: str) -> Rejection:
    """1008 for an unknown Developer model."""
    return Rejection(
        1008,
        f"{model} is not found for API version {version}, or is not supported "
        "for bidiGenerateContent. Call ListModels to see the list of available "
        "models and their supported methods.",
    )


def vertex_not_found(resource: str) -> Rejection:
    """1008 for an unknown Vertex model or one not served in that location."""
    return Rejection(
        1008,
        f"Publisher Model `{resource}` was not found or your project does not "
        "have access to it. Please ensure you are using a valid model version.",
    )


def check_model(
    model: Any,
    route: Route,
    *,
    project: str | None = None,
    models: Collection[str] | None = None,
    locations: Collection[str] = VERTEX_LOCATIONS,
) -> ModelRef | Rejection:
    """Validate setup.model for the route.

    `project`: the Vertex caller's project; `models`: the served model ids
    (default: the provider's known models); `locations`: served Vertex regions.
    """
    if models is None:
        models = DEVELOPER_MODELS if route.provider == "gemini_api" else VERTEX_MODELS
    if not isinstance(model, str) or not model:
        return Rejection(1007, INVALID_ARGUMENT)
    if route.provider == "gemini_api":
        model_id = model.removeprefix("models/")
        if not model.startswith("models/") or model_id not in models:
            name = model if model.startswith("models/") else f"models/{model}"
            return not_found(name, route.version)
        return ModelRef(model, model_id)
    match = _VERTEX_MODEL.fullmatch(model)
    if match is None:
        return vertex_not_found(model)
    proj, location, model_id = match.groups()
    if project is not None and proj != project:
        return Rejection(
            1008,
            f"Permission 'aiplatform.endpoints.predict' denied on resource "
            f"'//aiplatform.googleapis.com/{model}' (or it may not exist).",
        )
    if model_id not in models or location not in locations:
        return vertex_not_found(model)
    return ModelRef(model, model_id, proj, location)


def check_setup(
    setup: dict[str, Any],
    model: ModelRef,
    provider: Provider = "gemini_api",
    *,
    strict: bool = False,
    unverified: list[str] | None = None,
) -> Rejection | None:
    """Validate a normalised setup beyond the model (see families.RULES).

    `strict`: also enforce the rules the reference does not state as
    rejections; otherwise their fields are appended to `unverified`.
    """
    unknown = sorted(set(setup) - SETUP_KEYS)
    if unknown:
        return Rejection(
            1007,
            f'Invalid JSON payload received. Unknown name "{unknown[0]}" at '
            "'setup': Cannot find field.",
            unknown[0],
        )
    generation = setup.get("generationConfig") or {}
    modalities = generation.get("responseModalities") or ["AUDIO"]
    if modalities != ["AUDIO"]:
        # Every served model is native audio: one modality, and only AUDIO.
        return Rejection(1007, INVALID_ARGUMENT, "generationConfig.responseModalities")
    return families.check(
        setup,
        families.family_of(model.model_id),
        provider,
        strict=strict,
        unverified=[] if unverified is None else unverified,
    )
