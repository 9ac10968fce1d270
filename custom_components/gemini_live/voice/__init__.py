"""The Live-turn core shared by the STT, conversation and TTS entities.

`turn`, `session` and `manager` are plain asyncio (no Home Assistant imports)
so that another front end (e.g. a future native audio pipeline) can reuse
them; `config`, `tools` and `chat` adapt them to Home Assistant.
"""

from .manager import VoiceManager
from .turn import LiveTurn

__all__ = ["LiveTurn", "VoiceManager"]
