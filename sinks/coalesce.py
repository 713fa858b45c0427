"""Pack consecutive plain-text replies of a chat into one platform message.

A handler that answers with three short lines costs three sends against a 1 msg/s chat limit;
joined, they cost one. Only replies that would look the same either way are joined: plain text
(kind "text", no markup) of one chat, thread and option set, where only the first may quote a
message. Edits, typing, follow-ups and replies with buttons always go alone. Order is kept, and
each group lists every reply it carries so the ledger can mark all of them delivered by one send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SEPARATOR = "\n\n"


def text_length(text: str) -> int:
    """Length in UTF-16 code units: what Telegram counts, and never less than the code points
    Discord and Slack count, so a message within this length is within every platform's."""
    return len(text.encode("utf-16-le")) // 2


def coalesce(replies: Sequence[Mapping[str, Any]], text_limit: int) -> list[list[Mapping[str, Any]]]:
    """Group `replies` (a batch, possibly of several chats) into messages of at most `text_limit`.

    Within a chat, a reply joins the group holding the chat's previous reply when both can be
    merged and the joined text fits; otherwise it starts a group. Groups come out in the order of
    their first reply, so each chat's replies keep their order (chats may interleave differently).
    A reply too long on its own is its own group: splitting is not this function's business.
    """
    groups: list[list[Mapping[str, Any]]] = []
    open_group: dict[str, tuple[list[Mapping[str, Any]], int]] = {}  # chat -> (group, its text length)
    for reply in replies:
        chat = str(reply.get("chat_key"))
        current = open_group.get(chat)
        if _mergeable(reply):
            length = text_length(reply["text"])
            if current is not None:
                group, group_length = current
                joined = group_length + text_length(SEPARATOR) + length
                if _same_message(group[0], reply) and joined <= text_limit:
                    group.append(reply)
                    open_group[chat] = (group, joined)
                    continue
            group = [reply]
            groups.append(group)
            open_group[chat] = (group, length)
        else:
            groups.append([reply])
            open_group.pop(chat, None)  # nothing may be merged across an edit, typing or markup
    return groups


def merged_reply(group: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The one reply to send for a group: the first reply with the group's texts joined.

    It keeps the first reply's id (Discord's nonce, so a retried group is deduplicated) and takes
    the last reply's chat_seq: the message delivers everything up to it, and seqs stay increasing.
    """
    if not group:
        raise ValueError("an empty group has nothing to send")
    merged = dict(group[0])
    if len(group) > 1:
        merged["text"] = SEPARATOR.join(str(r["text"]) for r in group)
        merged["chat_seq"] = group[-1]["chat_seq"]
    return merged


def _mergeable(reply: Mapping[str, Any]) -> bool:
    return (reply.get("kind", "text") == "text" and reply.get("markup") is None
            and isinstance(reply.get("text"), str) and reply["text"] != ""
            and not (reply.get("platform_meta") or {}).get("interaction_token"))


def _same_message(first: Mapping[str, Any], reply: Mapping[str, Any]) -> bool:
    # Replies to different Slack interactions never share a message: an ephemeral one goes to its own
    # response_url, which shows it to the one user who acted.
    return (reply.get("reply_to") is None
            and reply.get("thread_id") == first.get("thread_id")
            and (reply.get("options") or {}) == (first.get("options") or {})
            and (reply.get("platform_meta") or {}).get("response_url")
            == (first.get("platform_meta") or {}).get("response_url"))
