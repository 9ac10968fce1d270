"""A native-audio Live model told to read text aloud: it answers questions.

Google's guides set the two apart: the TTS models are "tailored for exact
text recitation", while the Live API "is designed for interactive,
unstructured audio" and dynamic conversation (Gemini API "Text-to-speech
generation"; Vertex AI "Generate speech with Gemini TTS"). A native-audio
model given a system instruction to read every message aloud therefore reads
a plain statement, but a message with a question in it is taken as a request
and answered instead (`ANSWER`), whatever the instruction says.
"""

from __future__ import annotations

import re

from .scenario import Reply, UserTurn

READ_ALOUD = re.compile(
    r"\bread\b[^.]*\baloud\b|\bword for word\b|\bverbatim\b|\bexactly as written\b",
    re.IGNORECASE,
)
"""A system instruction asking the model to read the user's text."""
ANSWER = "Sorry, I cannot check that from here."
"""What the model says instead of reading a text with a question in it."""


def reading_reply(turn: UserTurn) -> Reply | None:
    """Return the model's own reply to typed text in a session told to read aloud.

    None for other sessions and turns (the scripted or default reply applies).
    """
    instruction = turn.connection.system_instruction or ""
    if not turn.text or not READ_ALOUD.search(instruction):
        return None
    if "?" in turn.text:
        return Reply(text=ANSWER)
    return Reply(text=turn.text)
