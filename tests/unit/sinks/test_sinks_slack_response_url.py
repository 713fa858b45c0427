"""Slack replies: in channel through chat.postMessage, ephemeral through the interaction's response_url
(only on hooks.slack.com or under the bot's API base), and what a response_url answers."""

from __future__ import annotations

import json

import pytest
from sinks_factories import make_bot, make_reply

from botstream.sinks.coalesce import coalesce
from botstream.sinks.errors import InvalidReply
from botstream.sinks.outcomes import Delivered, Permanent, Retryable, Wait
from botstream.sinks.platforms.base import InboundResponse
from botstream.sinks.platforms.slack import build_request, classify

RESPONSE_URL = "https://hooks.slack.com/commands/T0001/1234567890/s3cretPart"


def slack_reply(**overrides: object) -> dict[str, object]:
    return make_reply("slack", **{"platform_meta": {"response_url": RESPONSE_URL}, **overrides})


def test_a_reply_to_a_slash_command_goes_in_channel_by_default() -> None:
    request = build_request(make_bot("slack"), slack_reply(text="answer"))
    assert request.url.endswith("/api/chat.postMessage")
    assert json.loads(request.content)["text"] == "answer"
    assert "Authorization" in request.headers


@pytest.mark.parametrize("options", [{"response_type": "ephemeral"}, {"ephemeral": "true"}])
def test_an_ephemeral_reply_goes_to_the_response_url(options: dict[str, str]) -> None:
    request = build_request(make_bot("slack"), slack_reply(text="only you", options=options, thread_id="1.2"))
    assert (request.method, request.url) == ("POST", RESPONSE_URL)
    assert json.loads(request.content) == {"response_type": "ephemeral", "replace_original": False,
                                           "text": "only you", "thread_ts": "1.2"}
    assert "Authorization" not in request.headers  # the URL authenticates
    assert "s3cretPart" not in request.describe() and "s3cretPart" not in repr(request)


def test_ephemeral_blocks_and_flags() -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    request = build_request(make_bot("slack"), slack_reply(
        text="hi", markup=json.dumps(blocks), options={"response_type": "ephemeral", "replace_original": "true"}))
    body = json.loads(request.content)
    assert (body["blocks"], body["text"], body["replace_original"]) == (blocks, "hi", True)


def test_ephemeral_without_a_response_url_is_refused_not_posted_for_everyone() -> None:
    with pytest.raises(InvalidReply, match="response_url"):
        build_request(make_bot("slack"), make_reply("slack", options={"response_type": "ephemeral"}))


def test_a_response_url_elsewhere_is_refused_unless_under_the_bots_api_base() -> None:
    evil = slack_reply(options={"response_type": "ephemeral"},
                       platform_meta={"response_url": "http://169.254.169.254/latest/meta-data"})
    with pytest.raises(InvalidReply, match="hooks.slack.com"):
        build_request(make_bot("slack"), evil)
    sandbox = "http://127.0.0.1:8090"
    local = slack_reply(options={"response_type": "ephemeral"},
                        platform_meta={"response_url": f"{sandbox}/commands/T1/C1/abc"})
    assert build_request(make_bot("slack", api_base_url=sandbox), local).url == f"{sandbox}/commands/T1/C1/abc"
    lookalike = slack_reply(options={"response_type": "ephemeral"},
                            platform_meta={"response_url": "https://hooks.slack.com.evil.example/x"})
    with pytest.raises(InvalidReply):
        build_request(make_bot("slack"), lookalike)


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, b"ok", Delivered(None)),
    (404, b"used_url", Permanent("used_url", 404, "used_url")),
    (404, b"expired_url", Permanent("expired_url", 404, "expired_url")),
    (400, b"no_text", Permanent("no_text", 400, "no_text")),
    (500, b"internal_error", Retryable("internal_error", 500)),
])
def test_response_url_answers(status: int, body: bytes, expected: object) -> None:
    assert classify(InboundResponse(status, {}, body)) == expected


def test_response_url_rate_limit_waits() -> None:
    assert isinstance(classify(InboundResponse(429, {"Retry-After": "2"}, b"ratelimited")), Wait)


def test_replies_to_different_interactions_are_never_merged() -> None:
    first = slack_reply(reply_id="a", text="for Ann", options={"response_type": "ephemeral"}, chat_seq=1)
    second = slack_reply(reply_id="b", text="for Bob", options={"response_type": "ephemeral"}, chat_seq=2,
                         platform_meta={"response_url": RESPONSE_URL.replace("s3cretPart", "other")})
    third = slack_reply(reply_id="c", text="for Bob again", options={"response_type": "ephemeral"}, chat_seq=3,
                        platform_meta={"response_url": RESPONSE_URL.replace("s3cretPart", "other")})
    groups = coalesce([first, second, third], 40_000)
    assert [[r["reply_id"] for r in g] for g in groups] == [["a"], ["b", "c"]]
