"""Token sensors: the input, output and total tokens each assistant used.

Every usageMetadata message of the assistant's Live sessions (its
conversations, transcriptions and spoken announcements) adds to them; the
last turn's figure is an attribute. The totals survive restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
import math

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import GeminiLiveEntity, add_assistant_entities
from .runtime import GeminiLiveConfigEntry
from .voice.activity import ActivityEvent, Tokens, UsageReport

PARALLEL_UPDATES = 0
"""The sensors are pushed to; nothing is polled."""

UNIT_TOKENS = "tokens"
ATTR_LAST_TURN = "last_turn"


@dataclass(frozen=True, kw_only=True)
class TokenSensorDescription(SensorEntityDescription):
    """A token sensor: which count of a usage report it adds up."""

    count: Callable[[Tokens], int]


SENSORS: tuple[TokenSensorDescription, ...] = (
    TokenSensorDescription(
        key="input_tokens",
        translation_key="input_tokens",
        count=lambda tokens: tokens.input,
    ),
    TokenSensorDescription(
        key="output_tokens",
        translation_key="output_tokens",
        count=lambda tokens: tokens.output,
    ),
    TokenSensorDescription(
        key="total_tokens",
        translation_key="total_tokens",
        count=lambda tokens: tokens.total,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the token sensors of each assistant."""
    add_assistant_entities(
        entry,
        async_add_entities,
        lambda subentry: [GeminiLiveTokenSensor(entry, subentry, d) for d in SENSORS],
    )


class GeminiLiveTokenSensor(GeminiLiveEntity, RestoreSensor):
    """Tokens an assistant used, of one kind, since it was added."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_native_unit_of_measurement = UNIT_TOKENS
    _attr_state_class = SensorStateClass.TOTAL_INCREASING
    _attr_suggested_display_precision = 0
    entity_description: TokenSensorDescription

    def __init__(
        self,
        entry: GeminiLiveConfigEntry,
        subentry: ConfigSubentry,
        description: TokenSensorDescription,
    ) -> None:
        """Count `description`'s tokens of the assistant `subentry`."""
        super().__init__(entry, subentry, description.key)
        self.entity_description = description
        self._total = 0
        self._attr_native_value = self._total

    async def async_added_to_hass(self) -> None:
        """Restore the total and last turn, then count the assistant's usage."""
        await super().async_added_to_hass()
        last = await self.async_get_last_sensor_data()
        if last is not None and (total := _count(last.native_value)) is not None:
            self._total = total
            self._attr_native_value = total
        state = await self.async_get_last_state()
        if (
            state is not None
            and (last_turn := _count(state.attributes.get(ATTR_LAST_TURN))) is not None
        ):
            self._attr_extra_state_attributes = {ATTR_LAST_TURN: last_turn}
        self.async_on_remove(self.voice_manager.activity.subscribe(self._on_activity))

    @callback
    def _on_activity(self, event: ActivityEvent) -> None:
        if not isinstance(event, UsageReport):
            return
        count = self.entity_description.count
        self._total += count(event.added)
        self._attr_native_value = self._total
        self._attr_extra_state_attributes = {ATTR_LAST_TURN: count(event.turn)}
        self.async_write_ha_state()


def _count(value: object) -> int | None:
    """Return a restored token count, None for anything but a count."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return int(value)
