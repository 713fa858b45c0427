from __future__ import annotations

import pytest

from tests.pipeline import make_update, produce_updates

pytestmark = pytest.mark.kafka


def test_echo_once_per_update_and_bots_never_answer_themselves(pipeline) -> None:  # type: ignore[no-untyped-def]
    worker = pipeline.start_streams()
    replies = pipeline.reader("replies", "reply")
    first = make_update("100", "hello")
    redelivered = [dict(first, correlation_id=f"redelivery-{i}") for i in range(2)]
    own = make_update("100", "echo: hello", from_bot=True)
    second = make_update("100", "world")
    produce_updates(pipeline.bootstrap, pipeline.settings.topic("updates"), [first, *redelivered, own, second])
    got = replies.wait_for(2, timeout=90, alive=worker.alive, settle=3)
    assert worker.alive(), worker.output()[-4000:]
    assert [r["text"] for r in got] == ["echo: hello", "echo: world"], worker.output()[-4000:]
    assert got[0]["chat_seq"] < got[1]["chat_seq"]
