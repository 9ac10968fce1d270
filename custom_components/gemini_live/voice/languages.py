"""Languages the Live API understands and speaks (Home Assistant's codes)."""

from typing import Final

LANGUAGES: Final = (
    "af", "am", "ar", "as", "az", "be", "bg", "bn", "bs", "ca", "cs", "da", "de",
    "el", "en", "es", "et", "eu", "fi", "fil", "fr", "gl", "gu", "he", "hi", "hr",
    "hu", "hy", "id", "is", "it", "ja", "ka", "kk", "km", "kn", "ko", "lo", "lt",
    "lv", "mk", "ml", "mn", "mr", "ms", "nb", "ne", "nl", "no", "or", "pa", "pl",
    "pt", "ro", "ru", "sk", "sl", "sq", "sr", "sv", "sw", "ta", "te", "th", "tr",
    "uk", "ur", "uz", "vi", "zh", "zu",
)  # fmt: skip
"""The 70 languages of the Live API docs ("iw" is Home Assistant's "he"),
plus "nb", Home Assistant's Norwegian."""
