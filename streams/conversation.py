"""Conversation state as the fold of `ConversationEvent`s (sans-IO).

The `conversations` table is only a cache of `fold(events)`: the live worker applies each event it
emits, and `botstream replay` rebuilds the same state from the `messages` topic. Keep `apply` pure and
total — an unknown payload type leaves the state as it is — so replaying old logs never fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypedDict

from botstream.schemas.binary_compiler import UNION_TAG


class ConversationState(TypedDict):
    chat_key: str
    turns: int            # accepted updates
    replies: int          # replies planned
    delivered: int
    failed: int
    first_seen_ms: int
    last_seen_ms: int
    locale: str | None
    handoff: bool
    bot_state: dict[str, Any]
    last_event_id: str | None


def initial_state(chat_key: str) -> ConversationState:
    return ConversationState(chat_key=chat_key, turns=0, replies=0, delivered=0, failed=0, first_seen_ms=0,
                             last_seen_ms=0, locale=None, handoff=False, bot_state={}, last_event_id=None)


def payload_type(event: dict[str, Any]) -> str:
    """The union branch of a ConversationEvent payload: the codec tags it as `{"type": "ReplyPlanned", ...}`."""
    return str(event["payload"].get(UNION_TAG, ""))


def payload_body(event: dict[str, Any]) -> dict[str, Any]:
    return event["payload"]


def apply(state: ConversationState | None, event: dict[str, Any]) -> ConversationState:
    s: ConversationState = dict(state) if state is not None else initial_state(event["chat_key"])  # type: ignore[assignment]
    _apply_in_place(s, event)
    return s


def apply_all(state: ConversationState, events: Iterable[dict[str, Any]]) -> ConversationState:
    """`apply` of several events, copying the state once."""
    s: ConversationState = dict(state)  # type: ignore[assignment]
    for event in events:
        _apply_in_place(s, event)
    return s


def _apply_in_place(s: ConversationState, event: dict[str, Any]) -> None:
    kind = payload_type(event)
    body = payload_body(event)
    at = int(event["at_ms"])
    if kind == "UpdateAccepted":
        s["turns"] += 1
        s["first_seen_ms"] = s["first_seen_ms"] or at
        s["last_seen_ms"] = max(s["last_seen_ms"], at)
        if body.get("locale"):
            s["locale"] = body["locale"]
    elif kind == "ReplyPlanned":
        s["replies"] += 1
    elif kind == "ReplyDelivered":
        s["delivered"] += 1
    elif kind == "ReplyFailed":
        s["failed"] += 1
    elif kind == "StateChanged":
        s["bot_state"] = json.loads(body["state_json"])
    elif kind == "HandoffRequested":
        s["handoff"] = True
    elif kind == "HandoffReleased":
        s["handoff"] = False
    s["last_event_id"] = event["event_id"]


def fold(events: Iterable[dict[str, Any]]) -> dict[str, ConversationState]:
    states: dict[str, ConversationState] = {}
    for event in events:
        states[event["chat_key"]] = apply(states.get(event["chat_key"]), event)
    return states
