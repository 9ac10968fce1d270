"""Repairs issues of the integration (none is fixable: no repairs platform)."""

from __future__ import annotations

from collections.abc import Collection

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .live import LiveError
from .quota import console_url, is_spending_cap
from .voice.tools import MAX_FUNCTIONS

ISSUE_TOO_MANY_TOOLS = "too_many_tools"
ISSUE_QUOTA = "quota_exceeded"
ISSUE_SPENDING_CAP = "spending_cap"


def _prefixes(entry: ConfigEntry) -> tuple[str, ...]:
    """Return how the ids of the entry's issues begin (an assistant's id follows)."""
    return tuple(
        f"{kind}_{entry.entry_id}_" for kind in (ISSUE_TOO_MANY_TOOLS, ISSUE_QUOTA)
    )


def _quota_issue_id(entry: ConfigEntry, subentry_id: str) -> str:
    return f"{ISSUE_QUOTA}_{entry.entry_id}_{subentry_id}"


@callback
def async_delete_issues(
    hass: HomeAssistant, entry: ConfigEntry, keep: Collection[str] = ()
) -> None:
    """Delete the entry's issues but those of the assistants in `keep`.

    Called with no `keep` when the entry is removed, and at setup with the
    assistants that still exist.
    """
    for domain, issue_id in list(ir.async_get(hass).issues):
        if domain != DOMAIN:
            continue
        for prefix in _prefixes(entry):
            if (
                issue_id.startswith(prefix)
                and issue_id.removeprefix(prefix) not in keep
            ):
                ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def async_update_too_many_tools(
    hass: HomeAssistant, entry: ConfigEntry, subentry: ConfigSubentry, tools: int
) -> None:
    """Raise the issue while an assistant's LLM APIs expose more tools than fit.

    ``tools``: how many valid tools a session would declare. The issue is
    deleted once they fit again.
    """
    issue_id = f"{ISSUE_TOO_MANY_TOOLS}_{entry.entry_id}_{subentry.subentry_id}"
    if tools <= MAX_FUNCTIONS:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_TOO_MANY_TOOLS,
        translation_placeholders={
            "entry": subentry.title,
            "tools": str(tools),
            "limit": str(MAX_FUNCTIONS),
        },
    )


@callback
def async_create_quota_issue(
    hass: HomeAssistant, entry: ConfigEntry, subentry: ConfigSubentry, err: LiveError
) -> None:
    """Raise an assistant's issue: the service refused for quota or spending cap.

    Per assistant, as Google's rate limits are per model: one assistant's
    answer says nothing of another's limit.
    It links the provider's console page where the limit is seen and raised.
    """
    url = console_url(entry.data, err)
    ir.async_create_issue(
        hass,
        DOMAIN,
        _quota_issue_id(entry, subentry.subentry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_SPENDING_CAP if is_spending_cap(err) else ISSUE_QUOTA,
        translation_placeholders={"entry": subentry.title, "url": url},
        learn_more_url=url,
    )


@callback
def async_delete_quota_issue(
    hass: HomeAssistant, entry: ConfigEntry, subentry: ConfigSubentry
) -> None:
    """Delete an assistant's quota issue (it answered a turn again)."""
    ir.async_delete_issue(hass, DOMAIN, _quota_issue_id(entry, subentry.subentry_id))
