"""The images of `gemini_live.ask`, read as the JPEG frames the Live API takes.

The Live API takes video as discrete JPEG frames (`realtimeInput.video`,
image/jpeg; live-api.md 2.3, 4), so an image is sent as it is, or refused: a
camera entity's snapshot, a media source item that is a local file (a
`media-source://camera/...` item is its camera's snapshot), or a file under
the configuration's www folder (a path, or its `/local/...` URL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from homeassistant.components import camera, media_source
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, split_entity_id, valid_entity_id
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN

MAX_IMAGES: Final = 5
"""Images of one request (sent 1 s apart: the Live API takes at most 1 fps)."""
MAX_IMAGE_BYTES: Final = 4 * 1024 * 1024
"""Largest image sent (memory bound; a camera snapshot is a few hundred kB)."""
CAMERA_TIMEOUT: Final = 10
"""Seconds a camera has to give its snapshot."""
JPEG_MIME: Final = "image/jpeg"
JPEG_START: Final = b"\xff\xd8\xff"
"""The start of every JPEG file (SOI marker, then the first segment's)."""
CAMERA_SOURCE: Final = f"media-source://{Platform.CAMERA}/"
LOCAL_URL: Final = "/local/"
"""Home Assistant serves the www folder under this URL."""


def image_reference(value: Any) -> str:
    """Return an `images` item as text (a media selector gives a mapping)."""
    if isinstance(value, dict):
        value = value.get("media_content_id")
    if not isinstance(value, str) or not value.strip():
        raise ValueError("an image is a camera, a media source id or a file path")
    return value.strip()


async def async_read_images(hass: HomeAssistant, images: list[str]) -> list[bytes]:
    """Return the JPEG bytes of each image, in order.

    Raises ServiceValidationError (translated) for a camera or file that
    does not exist, a path outside the www folder, media that is not a local
    file, an image that is not JPEG or is too large; HomeAssistantError when
    a camera gives no snapshot.
    """
    return [await _async_read(hass, image) for image in images]


async def _async_read(hass: HomeAssistant, image: str) -> bytes:
    if image.startswith(CAMERA_SOURCE):
        return await _async_snapshot(hass, image.removeprefix(CAMERA_SOURCE))
    if media_source.is_media_source_id(image):
        return await _async_media(hass, image)
    if valid_entity_id(image) and split_entity_id(image)[0] == Platform.CAMERA:
        return await _async_snapshot(hass, image)
    www = Path(hass.config.path("www"))
    if image.startswith(LOCAL_URL):
        path = www / image.removeprefix(LOCAL_URL)
    else:
        path = Path(hass.config.path(image))
    return await hass.async_add_executor_job(_read_file, image, path, www)


async def _async_snapshot(hass: HomeAssistant, entity_id: str) -> bytes:
    """Return a camera's snapshot."""
    if hass.states.get(entity_id) is None:
        raise validation_error("camera_not_found", camera=entity_id)
    try:
        snapshot = await camera.async_get_image(hass, entity_id, CAMERA_TIMEOUT)
    except HomeAssistantError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="camera_no_image",
            translation_placeholders={"camera": entity_id, "reason": str(err)},
        ) from err
    return _jpeg(entity_id, snapshot.content)


async def _async_media(hass: HomeAssistant, media_id: str) -> bytes:
    """Return a media source item's file."""
    try:
        media = await media_source.async_resolve_media(hass, media_id, None)
    except HomeAssistantError as err:
        raise validation_error("image_not_found", image=media_id) from err
    if media.path is None:
        raise validation_error("image_not_local", image=media_id)
    return await hass.async_add_executor_job(_read_file, media_id, media.path, None)


def _read_file(image: str, path: Path, folder: Path | None) -> bytes:
    """Read an image file (inside `folder`, if given); runs in the executor."""
    path = path.resolve()
    if folder is not None and not path.is_relative_to(folder.resolve()):
        raise validation_error("path_not_allowed", image=image, folder=str(folder))
    if not path.is_file():
        raise validation_error("image_not_found", image=image)
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise _too_large(image)
    with path.open("rb") as file:
        return _jpeg(image, file.read(MAX_IMAGE_BYTES + 1))


def _jpeg(image: str, data: bytes) -> bytes:
    """Return `data` if it is a JPEG image small enough to send."""
    if not data.startswith(JPEG_START):
        raise validation_error("image_unsupported", image=image)
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_large(image)
    return data


def _too_large(image: str) -> ServiceValidationError:
    return validation_error(
        "image_too_large", image=image, limit=str(MAX_IMAGE_BYTES >> 20)
    )


def validation_error(key: str, **placeholders: str) -> ServiceValidationError:
    """Return the translated error of an action's invalid input."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders,
    )
