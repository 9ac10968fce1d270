"""Times of day in words, as a voice assistant says them."""

from __future__ import annotations

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty"}


def number(value: int) -> str:
    """1..59 in words."""
    if value < 20:
        return _UNITS[value]
    tens, units = divmod(value, 10)
    return _TENS[tens] + (f" {_UNITS[units]}" if units else "")


def spoken_time(hour: int, minute: int) -> str:
    """E.g. (14, 5) -> "It is two oh five in the afternoon."."""
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"Not a time of day: {hour}:{minute:02d}")
    said = number(hour % 12 or 12)
    if minute == 0:
        said += " o'clock"
    elif minute < 10:
        said += f" oh {number(minute)}"
    else:
        said += f" {number(minute)}"
    if hour < 12:
        part = "in the morning"
    elif hour < 18:
        part = "in the afternoon"
    else:
        part = "in the evening"
    return f"It is {said} {part}."
