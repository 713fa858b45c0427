"""Control updates: operator and scheduler actions that travel on `updates`, in the chat's order.

A handoff release (`botstream handoff release`) or a scheduled job's message to a chat is an `Update`
keyed by the chat, marked in `platform_meta`, so it is handled by the worker that owns the chat, after
everything the chat sent before it.
"""

from __future__ import annotations

import time
from typing import Any

from botstream.streams.processor import stable_id

__all__ = ["CONTROL", "HANDOFF_RELEASE", "JOB_SEND", "control_update"]

CONTROL = "botstream_control"  # platform_meta key of control updates
HANDOFF_RELEASE = "handoff_release"
JOB_SEND = "job_send"


def control_update(platform: str, bot_id: str, chat_id: str, control: str, *, text: str | None = None,
                   tag: str = "", by: str | None = None) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "platform": platform, "bot_id": bot_id, "chat_id": chat_id, "chat_type": "unknown", "user_id": by,
        "update_id": f"control:{control}:{tag or now}", "kind": "other", "text": text, "attachments": [],
        "reply_to": None, "thread_id": None, "locale": None, "platform_ts_ms": None, "received_at_ms": now,
        "correlation_id": stable_id("control", control, tag, now)[:16], "from_bot": False,
        "platform_meta": {CONTROL: control}, "traceparent": None, "raw": b"",
    }
