"""Who a pipeline run is for, known at the STT stage, and whether they may go on.

The STT entity gets no context, yet it opens the conversation's Live session
(whose tools and prompt depend on the user) and streams the user's speech
into it. A satellite's run carries the satellite's context (satellites.py).
A run started over the WebSocket API (the frontend's Assist dialog, the
companion apps) runs in a task of that connection's command, so its user is
the one of `websocket_api`'s `current_connection`.

From Home Assistant 2026.11 a conversation has an owner: the user of its
first intent stage (`ChatSession.user_id`); another user's request is
refused at the intent stage (intent-unauthorized). Such a run must not
speak into the owner's Live session. Home Assistant 2026.10 has no owners.
"""

from __future__ import annotations

from homeassistant.components.websocket_api.connection import current_connection
from homeassistant.core import Context
from homeassistant.helpers.chat_session import ChatSession
from homeassistant.helpers.typing import UNDEFINED

from .satellites import SatelliteRun


def run_context(satellite: SatelliteRun | None) -> Context | None:
    """Return the context of the run in the calling task (None: unknown)."""
    if satellite is not None:
        return satellite.context
    if (connection := current_connection.get()) is not None:
        return connection.context({})
    return None


def may_continue(session: ChatSession | None, context: Context | None) -> bool:
    """Whether the run's user may continue the conversation of `session`.

    True without owners (2026.10), before the first intent stage, and when
    the run's user is unknown (Home Assistant still checks at the intent
    stage).
    """
    owner = getattr(session, "user_id", UNDEFINED)
    if owner is UNDEFINED or context is None:
        return True
    return bool(owner == context.user_id)
