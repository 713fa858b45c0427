"""One module per platform: request validation and response shaping in that platform's own words.

Each exposes a class satisfying `PlatformApi` (see `base`); the engine runs the shared steps
(chat faults, limits, random faults, ledger) around them.
"""

from botstream.sandbox.platforms.base import Accepted, LimitVerdict, PlatformApi, SendAttempt
from botstream.sandbox.platforms.discord import DiscordApi
from botstream.sandbox.platforms.slack import SlackApi
from botstream.sandbox.platforms.telegram import TelegramApi
from botstream.sandbox.platforms.whatsapp import WhatsAppApi

__all__ = [
    "Accepted",
    "DiscordApi",
    "LimitVerdict",
    "PlatformApi",
    "SendAttempt",
    "SlackApi",
    "TelegramApi",
    "WhatsAppApi",
]
