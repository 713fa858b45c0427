"""Replay through unsigned headers: per platform, one validly signed request sent again with every
header the signature does not cover changed (delivery ids, request ids, retry counters, trace
context, a GitHub event name) stays the same update: the dedupe id comes only from signed content.

The sink here keeps every copy; streams' dedupe table then drops all but the first, because they
share the update id (a header-derived id would have made each copy a new update and a new reply).
"""

from __future__ import annotations

import json

import pytest
from ingest_shell_support import (
    call,
    discord_command,
    discord_headers,
    hub_headers,
    make_app,
    slack_event,
    slack_headers,
    telegram_headers,
    telegram_update,
    whatsapp_messages,
)

from botstream.schemas.codec import Codec

CODEC = Codec()
UNSIGNED = [
    {},
    {"x-request-id": "replay-1", "x-github-delivery": "forged-1"},
    {"x-request-id": "replay-2", "x-github-delivery": "forged-2", "x-github-event": "push",
     "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    {"x-slack-retry-num": "3", "x-slack-retry-reason": "http_timeout", "x-request-id": "replay-3"},
]


def signed_requests() -> list[tuple[str, str, bytes, dict[str, str]]]:
    """Signed now: Slack and Discord refuse timestamps more than 300 s away, so this runs inside the
    test, never at collection (the suite can take longer than that)."""
    tg = telegram_update(update_id=501, chat_id=42)
    sl = slack_event(event_id="Ev501")
    dc = discord_command(interaction_id="1200000000000000501")
    wa = whatsapp_messages("4915550001", "4915550002")
    gen = json.dumps({"id": "gen-501", "chat_id": "room", "text": "hi"}).encode()
    return [
        ("telegram", "/webhooks/telegram/tg", tg, telegram_headers()),
        ("slack", "/webhooks/slack/sl", sl, slack_headers(sl)),
        ("discord", "/webhooks/discord/dc", dc, discord_headers(dc)),
        ("whatsapp", "/webhooks/whatsapp/wa", wa, hub_headers(wa, "wa-app-secret")),
        ("generic", "/webhooks/generic/gen", gen, hub_headers(gen, "generic-secret")),
    ]


PLATFORMS = ["telegram", "slack", "discord", "whatsapp", "generic"]


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_replay_with_altered_unsigned_headers_is_the_same_update(platform: str) -> None:
    _, path, body, headers = next(r for r in signed_requests() if r[0] == platform)
    app, sink = make_app()
    per_copy = []
    for extra in UNSIGNED:
        before = len(sink.records)
        reply = await call(app, "POST", path, headers={**headers, **extra}, body=body)
        assert reply.status == 200, (platform, extra, reply.body)
        per_copy.append(sorted(CODEC.decode("update", r.value)["update_id"] for r in sink.records[before:]))
    assert per_copy[0], platform
    assert all(ids == per_copy[0] for ids in per_copy), (platform, per_copy)
