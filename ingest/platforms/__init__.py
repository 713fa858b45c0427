"""The pure (sans-IO) inbound adapters, one per platform, behind one interface (`base.InboundAdapter`).

Order of checks for every request, so strangers learn nothing and no unverified byte is parsed:
method (405) -> own body limit (413, WhatsApp) -> signature over the raw body with the bot's own
credentials (401) -> Content-Type application/json (415) -> JSON object (400) -> handshake or
normalization. The shell looks the bot up first (404 for an unknown bot or one of another platform;
adapters re-check the platform) and enforces `max_body_bytes` (None: the settings default) before
reading the body.

What is answered with what:

- Signature missing, malformed, stale or wrong, Telegram secret token missing or wrong: 401
  (`Unauthorized`, reason e.g. signature_missing / signature_mismatch / timestamp_stale).
- Valid signature but the body is not a JSON object: 400 (`BadRequest`, malformed_json /
  json_not_object); a mapped event lacking what its Update needs (id, chat): 400 as well.
- Verified but deliberately ignored: 200 with no updates (`Accepted([])`). The platform expects a
  2xx and would otherwise retry something we will never use. That covers Telegram update types we
  do not map (inline_query, poll, ...), Slack envelopes other than event_callback and events other
  than message / app_mention, WhatsApp POSTs with no messages or statuses (and single items within a
  batch that lack their ids), and GitHub-style `ping` events.
- Handshakes are answered at once and produce nothing: Slack url_verification, Discord PING, WhatsApp
  GET subscription (403 when the verify token does not match).
"""

from __future__ import annotations

from botstream.ingest.platforms.base import InboundAdapter
from botstream.ingest.platforms.discord import DiscordAdapter
from botstream.ingest.platforms.generic import GenericAdapter
from botstream.ingest.platforms.slack import SlackAdapter
from botstream.ingest.platforms.telegram import TelegramAdapter
from botstream.ingest.platforms.whatsapp import WhatsAppAdapter

ADAPTERS: dict[str, InboundAdapter] = {
    adapter.platform: adapter
    for adapter in (TelegramAdapter(), SlackAdapter(), DiscordAdapter(), WhatsAppAdapter(), GenericAdapter())
}

__all__ = ["ADAPTERS", "InboundAdapter"]
