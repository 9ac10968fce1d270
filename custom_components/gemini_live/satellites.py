"""Which assist satellite a pipeline run comes from, known at the STT stage.

The STT entity gets no device, but an assist satellite that starts a run
switches to `listening` on the run's STT_START event, synchronously, in the
pipeline's task, just before the STT entity is called. Recording the task of
each such state write therefore tells the STT entity, by its own task, which
satellite (and so device, area and user) the run is for. This rests on the
order of Home Assistant's pipeline, not on a contract: a test pins it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
import weakref

from homeassistant.components.assist_satellite.entity import AssistSatelliteState
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import CALLBACK_TYPE, Context, Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

SATELLITE_DOMAIN = "assist_satellite"


@dataclass(frozen=True, slots=True)
class SatelliteRun:
    """The satellite a run comes from."""

    entity_id: str
    device_id: str | None
    context: Context


class SatelliteRuns:
    """Records, per task, the satellite that just started listening."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Track nothing yet (see `async_start`)."""
        self._hass = hass
        self._runs: weakref.WeakKeyDictionary[asyncio.Task[Any], tuple[str, Context]]
        self._runs = weakref.WeakKeyDictionary()

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Listen to satellite state writes; returns the function that stops it."""
        unsubs = [
            self._hass.bus.async_listen(kind, self._on_state, self._is_listening)
            for kind in (EVENT_STATE_CHANGED, EVENT_STATE_REPORTED)
        ]

        @callback
        def stop() -> None:
            for unsub in unsubs:
                unsub()

        return stop

    def pop(self) -> SatelliteRun | None:
        """Return the satellite of the run in the calling task, once."""
        task = asyncio.current_task()
        if task is None or (found := self._runs.pop(task, None)) is None:
            return None
        entity_id, context = found
        entry = er.async_get(self._hass).async_get(entity_id)
        return SatelliteRun(entity_id, entry.device_id if entry else None, context)

    @callback
    def _is_listening(self, data: Any) -> bool:
        state = data.get("new_state")
        return bool(
            state is not None
            and state.domain == SATELLITE_DOMAIN
            and state.state == AssistSatelliteState.LISTENING
        )

    @callback
    def _on_state(self, event: Event[Any]) -> None:
        if (task := asyncio.current_task()) is not None:
            self._runs[task] = (event.data["entity_id"], event.context)
