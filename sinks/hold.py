"""Chat order across the retry chain: while a reply of a chat is in the chain, its later replies wait.

Kafka keeps a chat's replies in order only until one of them fails: the failed reply leaves for a
retry topic, and without more the next reply of the chat would overtake it. `HoldBack` is the state
machine that prevents that, over two key-value tables (Faust tables co-partitioned by chat in the
worker, plain dicts in tests):

- `chats`: chat key -> {"b": blocker or None, "h": head, "t": tail, "s": highest chat_seq held}.
  The blocker names the one reply of the chat that is in the retry chain (id and attempt).
- `held`: "<chat key>\\n<index>" -> reply record, for head <= index < tail: the chat's later
  replies, in arrival order, waiting for the blocker to be delivered or dead-lettered.

    admit(reply)  -> SEND         chat is clear: deliver it now
                  -> HOLD         chat is blocked (or still has held replies): appended to the queue
                  -> IN_CHAIN     this very reply is the blocker (a redelivery after a crash): skip
                  -> ALREADY_HELD redelivery of a reply already queued: skip
    block(reply)  a delivery failed retryably: the reply is the chat's blocker (and leaves the queue
                  if it was its head)
    is_live(r)    is this retry-topic record the blocker's current hop? Anything else is stale
                  (a duplicate written before a crash, or a hop already resolved).
    lost_hop(...) the blocker, when an undecodable record of a retry topic is exactly its live hop
                  (its level, and the hop header `x-botstream-hop: <reply id>/<attempt>` every retry
                  record carries): that reply can no longer be read, and the chat must not wait for
                  it forever.
    unblock()     the blocker was delivered or dead-lettered
    head()/peek() the held replies to release next, in order; release(n) drops n of them once they
                  are delivered (or parked / dead-lettered)

Every operation is one read and at most a few writes; the queue never rewrites itself (no list value
that grows with every held reply), so a chat holding thousands of replies costs O(1) per step.
A chat whose blocker is cleared and whose queue is empty is deleted from both tables.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Admission", "Blocker", "ChatHold", "HoldBack", "held_key", "hop_id"]


class Admission(enum.Enum):
    SEND = "send"
    HOLD = "hold"
    IN_CHAIN = "in_chain"
    ALREADY_HELD = "already_held"


@dataclass(frozen=True)
class Blocker:
    """The reply of a chat that is in the retry chain, and which hop of it is the live one."""

    reply_id: str
    attempt: int
    level: int
    not_before_ms: int

    @property
    def hop(self) -> str:
        """The hop header of its live retry record."""
        return hop_id(self.reply_id, self.attempt)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.reply_id, "a": self.attempt, "l": self.level, "nb": self.not_before_ms}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Blocker:
        return cls(str(raw["id"]), int(raw["a"]), int(raw["l"]), int(raw["nb"]))


@dataclass(frozen=True)
class ChatHold:
    """One chat's row of the `chats` table."""

    blocker: Blocker | None = None
    head: int = 0
    tail: int = 0
    last_seq: int = -1

    @property
    def held(self) -> int:
        return self.tail - self.head

    @property
    def clear(self) -> bool:
        return self.blocker is None and self.held == 0

    def to_json(self) -> dict[str, Any]:
        return {"b": self.blocker.to_json() if self.blocker else None, "h": self.head, "t": self.tail,
                "s": self.last_seq}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> ChatHold:
        if not raw:
            return cls()
        blocker = raw.get("b")
        return cls(Blocker.from_json(blocker) if blocker else None, int(raw.get("h", 0)), int(raw.get("t", 0)),
                   int(raw.get("s", -1)))


def hop_id(reply_id: str, attempt: int) -> str:
    """Which hop of the retry chain a retry record is: "<reply id>/<attempt>" (its hop header)."""
    return f"{reply_id}/{attempt}"


def held_key(chat: str, index: int) -> bytes:
    """Key of a held reply; a newline cannot occur in a chat key's platform or bot id."""
    return f"{chat}\n{index:012d}".encode()


class HoldBack:
    def __init__(self, chats: MutableMapping[bytes, Any], held: MutableMapping[bytes, Any]) -> None:
        self._chats = chats
        self._held = held

    def state(self, chat: str) -> ChatHold:
        return ChatHold.from_json(self._chats.get(chat.encode()))

    def admit(self, chat: str, reply: Mapping[str, Any], *, replayed: bool = False) -> Admission:
        """Decide what to do with a reply arriving from `replies` (in chat order).

        `replayed` replies (re-enqueued from the DLQ by an operator) carry an old chat_seq, so the
        redelivery check by sequence does not apply to them.
        """
        st = self.state(chat)
        if st.blocker is not None and st.blocker.reply_id == reply["reply_id"]:
            return Admission.IN_CHAIN
        if st.clear:
            return Admission.SEND
        seq = int(reply.get("chat_seq") or 0)
        if not replayed and seq <= st.last_seq:
            return Admission.ALREADY_HELD
        self._held[held_key(chat, st.tail)] = dict(reply)
        last_seq = st.last_seq if replayed else max(st.last_seq, seq)
        self._write(chat, ChatHold(st.blocker, st.head, st.tail + 1, last_seq))
        return Admission.HOLD

    def block(self, chat: str, reply: Mapping[str, Any], level: int) -> None:
        """`reply` (as written to retry level `level`) is now the chat's one reply in the chain."""
        st = self.state(chat)
        head = st.head
        current = self.head(chat) if st.held else None
        if current is not None and current["reply_id"] == reply["reply_id"]:
            self._held.pop(held_key(chat, head), None)
            head += 1
        blocker = Blocker(str(reply["reply_id"]), int(reply.get("attempt") or 0), level,
                          int(reply.get("not_before_ms") or 0))
        seq = int(reply.get("chat_seq") or 0)
        self._write(chat, ChatHold(blocker, head, st.tail, max(st.last_seq, seq)))

    def is_live(self, chat: str, reply: Mapping[str, Any]) -> bool:
        blocker = self.state(chat).blocker
        return (blocker is not None and blocker.reply_id == reply["reply_id"]
                and blocker.attempt == int(reply.get("attempt") or 0))

    def lost_hop(self, chat: str, level: int, hop: str | None) -> Blocker | None:
        """The chat's blocker if an undecodable record of retry level `level` carrying hop header
        `hop` is its live hop.

        Only an exact match counts: any other undecodable record on a retry topic is not this chat's
        live hop, and releasing the chat for it would let its later replies overtake the blocker.
        """
        blocker = self.state(chat).blocker
        if blocker is not None and hop is not None and (blocker.level, blocker.hop) == (level, hop):
            return blocker
        return None

    def unblock(self, chat: str) -> None:
        st = self.state(chat)
        self._write(chat, ChatHold(None, st.head, st.tail, st.last_seq))

    def head(self, chat: str) -> dict[str, Any] | None:
        """The next held reply, skipping entries lost between two writes of a crashed worker."""
        peeked = self.peek(chat, 1)
        return peeked[0] if peeked else None

    def peek(self, chat: str, n: int) -> list[dict[str, Any]]:
        """Up to `n` held replies from the head, in order."""
        st = self.state(chat)
        out: list[dict[str, Any]] = []
        index = st.head
        while index < st.tail and len(out) < n:
            value = self._held.get(held_key(chat, index))
            if value is not None:
                out.append(dict(value))
            elif not out:  # a gap at the head: move past it for good
                st = ChatHold(st.blocker, index + 1, st.tail, st.last_seq)
                self._write(chat, st)
            index += 1
        return out

    def release(self, chat: str, count: int) -> None:
        """Drop `count` replies from the head of the queue (they are settled)."""
        st = self.state(chat)
        count = min(count, st.held)
        for index in range(st.head, st.head + count):
            self._held.pop(held_key(chat, index), None)
        self._write(chat, ChatHold(st.blocker, st.head + count, st.tail, st.last_seq))

    def _write(self, chat: str, st: ChatHold) -> None:
        key = chat.encode()
        if st.clear:
            if key in self._chats:
                del self._chats[key]
        else:
            self._chats[key] = st.to_json()
