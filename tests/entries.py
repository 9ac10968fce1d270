"""Config entries of today's shape for tests: an account with assistants."""

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigSubentry, ConfigSubentryData
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live.const import (
    CONF_MODEL,
    DOMAIN,
    RECOMMENDED_OPTIONS,
    SUBENTRY_AGENT,
)


def agent_data(
    model: str,
    options: Mapping[str, Any] = RECOMMENDED_OPTIONS,
    title: str = "Gemini Live",
) -> ConfigSubentryData:
    """Return the subentry data of an assistant."""
    return ConfigSubentryData(
        subentry_type=SUBENTRY_AGENT,
        data={CONF_MODEL: model, **options},
        title=title,
        unique_id=None,
    )


def account_entry(
    data: Mapping[str, Any],
    *agents: ConfigSubentryData,
    title: str = "Gemini Live",
    unique_id: str | None = None,
) -> MockConfigEntry:
    """Return a version-2 entry: the account's `data` and its assistants."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        data=dict(data),
        version=2,
        minor_version=1,
        unique_id=unique_id,
        subentries_data=list(agents),
    )


def agent(entry: MockConfigEntry, index: int = 0) -> ConfigSubentry:
    """Return the entry's `index`-th assistant."""
    return entry.get_subentries_of_type(SUBENTRY_AGENT)[index]


def update_agent(
    hass: HomeAssistant, entry: MockConfigEntry, index: int = 0, **changes: Any
) -> None:
    """Change settings of the entry's `index`-th assistant (the entry reloads)."""
    subentry = agent(entry, index)
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, **changes}
    )
