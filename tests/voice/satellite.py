"""A test assist satellite, set up through the public assist_satellite platform.

`async_setup_satellite(hass, voice)` adds a satellite entity on a device of
its own (in the "Kitchen" area) whose pipeline is the Gemini Live pipeline of
`voice`; `satellite.listen(pcm)` runs that pipeline from the satellite, as an
ESPHome or Wyoming satellite does after its wake word.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.components.assist_pipeline import PipelineEvent, PipelineStage
from homeassistant.components.assist_pipeline.pipeline import KEY_ASSIST_PIPELINE
from homeassistant.components.assist_satellite import (
    AssistSatelliteAnnouncement,
    AssistSatelliteConfiguration,
    AssistSatelliteEntity,
    AssistSatelliteEntityFeature,
)
from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar, device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    MockPlatform,
    mock_config_flow,
    mock_integration,
    mock_platform,
)

from .conftest import Voice, microphone

SATELLITE_DOMAIN = "test_satellite"


class Satellite(AssistSatelliteEntity):
    """A satellite that records its pipeline events and announcements."""

    _attr_name = "Kitchen satellite"
    _attr_unique_id = "kitchen-satellite"
    _attr_supported_features = (
        AssistSatelliteEntityFeature.ANNOUNCE
        | AssistSatelliteEntityFeature.START_CONVERSATION
    )

    def __init__(self) -> None:
        """Start with nothing recorded."""
        self.events: list[PipelineEvent] = []
        self.announcements: list[AssistSatelliteAnnouncement] = []
        self._attr_device_info = DeviceInfo(
            identifiers={(SATELLITE_DOMAIN, "kitchen")}, name="Kitchen satellite"
        )

    def on_pipeline_event(self, event: PipelineEvent) -> None:
        """Record a pipeline event."""
        self.events.append(event)

    def async_get_configuration(self) -> AssistSatelliteConfiguration:
        """Return an empty wake-word configuration."""
        return AssistSatelliteConfiguration(
            available_wake_words=[], active_wake_words=[], max_active_wake_words=1
        )

    async def async_set_configuration(
        self, config: AssistSatelliteConfiguration
    ) -> None:
        """Accept any configuration."""

    async def async_announce(self, announcement: AssistSatelliteAnnouncement) -> None:
        """Record an announcement (it "plays" at once)."""
        self.announcements.append(announcement)

    async def async_start_conversation(
        self, start_announcement: AssistSatelliteAnnouncement
    ) -> None:
        """Record the start announcement; the test then calls `listen`."""
        self.announcements.append(start_announcement)

    async def listen(self, pcm: bytes) -> list[PipelineEvent]:
        """Run the satellite's pipeline on `pcm`; return this run's events."""
        first = len(self.events)

        async def audio() -> AsyncIterator[bytes]:
            async for chunk in microphone(pcm):
                yield chunk

        await self.async_accept_pipeline_from_satellite(
            audio(), start_stage=PipelineStage.STT, end_stage=PipelineStage.TTS
        )
        return self.events[first:]


class _SatelliteFlow(ConfigFlow):
    """The test satellite integration's (unused) config flow."""

    VERSION = 1


async def async_setup_satellite(hass: HomeAssistant, voice: Voice) -> Satellite:
    """Add the satellite, in the Kitchen area, using `voice`'s pipeline."""
    satellite = Satellite()

    async def async_setup_entry(
        hass: HomeAssistant,
        entry: ConfigEntry,
        async_add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        async_add_entities([satellite])

    async def async_setup_integration(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        await hass.config_entries.async_forward_entry_setups(
            entry, ["assist_satellite"]
        )
        return True

    mock_integration(
        hass, MockModule(SATELLITE_DOMAIN, async_setup_entry=async_setup_integration)
    )
    mock_platform(
        hass,
        f"{SATELLITE_DOMAIN}.assist_satellite",
        MockPlatform(async_setup_entry=async_setup_entry),
    )
    mock_platform(hass, f"{SATELLITE_DOMAIN}.config_flow")
    assert await async_setup_component(hass, "assist_satellite", {})
    entry = MockConfigEntry(domain=SATELLITE_DOMAIN)
    entry.add_to_hass(hass)
    with mock_config_flow(SATELLITE_DOMAIN, _SatelliteFlow):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    hass.data[KEY_ASSIST_PIPELINE].pipeline_store.async_set_preferred_item(
        voice.pipeline_id
    )
    area = ar.async_get(hass).async_get_or_create("Kitchen")
    assert satellite.device_entry is not None
    dr.async_get(hass).async_update_device(satellite.device_entry.id, area_id=area.id)
    return satellite
