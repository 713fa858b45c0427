"""A hanging integration in one chat, through a real streams worker on the real broker.

Every chat of the test is on one partition. The upstream hangs for two chats: the FAQ bot catches
the integration's error and answers with its own text; a bot that does not catch it gets a recorded
HandlerFailed and its fallback. Meanwhile the other chats' /ask calls keep being answered.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from botstream.core.settings import Settings
from botstream.ops.admin import apply_catalog
from botstream.sandbox import SandboxConfig, SandboxServer
from botstream.streams.examples.faq import ASSISTANT_DOWN
from tests.integration.streams.conftest import Pipeline
from tests.pipeline import make_update, produce_updates
from tests.processes import ProcessGroup

pytestmark = pytest.mark.kafka

HANDLER_TIMEOUT_S = 3
OTHERS = 30


def bots_toml(upstream: str) -> str:
    integration = f'''[bots.integrations.llm]
base_url = "{upstream}/upstream/llm"
auth_header = "Authorization"
auth_scheme = "Bearer"
auth_value = "env:TEST_LLM_KEY"
max_concurrency = 8
timeout_s = 5
retries = 2
backoff_s = 0.05
'''
    return f'''
[[bots]]
id = "faq"
platform = "slack"
signing_secret = "slack-signing-secret-faq"
bot_token = "xoxb-test-faq"
api_base_url = "http://127.0.0.1:9"
handler = "botstream.streams.examples.faq"
{integration}
[[bots]]
id = "raw"
platform = "telegram"
secret_token = "tg-secret-raw"
token = "123456:TEST-token-raw"
api_base_url = "http://127.0.0.1:9"
handler = "tests.integration.integrations.raw_bot"
{integration}'''


def ask(chat: str, question: str, bot_id: str = "faq") -> dict[str, Any]:
    platform = "slack" if bot_id == "faq" else "telegram"
    text = f"/ask {question}" if bot_id == "faq" else question
    return make_update(chat, text, bot_id=bot_id, platform=platform, kind="command" if bot_id == "faq" else "message")


def test_a_hanging_integration_holds_only_its_own_chats(test_settings: Settings, kafka_bootstrap: str,
                                                        tmp_path: Path, processes: ProcessGroup) -> None:
    settings = dataclasses.replace(test_settings, partitions=1)
    report = apply_catalog(settings, kafka_bootstrap)
    assert report.ok, report.errors
    sandbox_cfg = SandboxConfig().merged({"upstream": {
        "latency": {"kind": "fixed", "ms": 50}, "authorization": "Bearer llm-test-key",
        "keys": {"slack:faq:hang-faq": "hang", "telegram:raw:hang-raw": "hang"}}})
    with SandboxServer(sandbox_cfg) as upstream:
        bots = tmp_path / "bots.toml"
        bots.write_text(bots_toml(upstream.base_url))
        pipeline = Pipeline(settings, kafka_bootstrap, bots, processes, tmp_path)
        worker = pipeline.start_streams(BOTSTREAM_HANDLER_TIMEOUT_S=str(HANDLER_TIMEOUT_S), TEST_LLM_KEY="llm-test-key")
        replies = pipeline.reader("replies", "reply")
        messages = pipeline.reader("messages", "conversation_event")
        try:
            # Warm up: the worker has joined and answers before the measured run starts.
            produce_updates(kafka_bootstrap, settings.topic("updates"), [ask("warm", "ready?")])
            replies.wait_for(1, timeout=90, alive=worker.alive)
            assert worker.alive(), worker.output()[-3000:]
            upstream.client.upstream_reset()

            hanging = [ask("hang-faq", "will you answer?"), ask("hang-raw", "will you?", bot_id="raw")]
            others = [ask(f"o{i}", f"q{i}") for i in range(OTHERS)]
            sent = time.time()
            produce_updates(kafka_bootstrap, settings.topic("updates"), [*hanging, *others])
            replies.wait_for(1 + OTHERS + 2, timeout=60, alive=worker.alive)
            messages.wait_for(10**6, timeout=2)
        finally:
            stats = upstream.client.upstream_stats()
            for r in pipeline.readers:
                r.close()
        assert worker.alive(), worker.output()[-3000:]

    got = {v["chat_key"]: (m.offset(), m.timestamp()[1], v["text"]) for _, v, m in replies.items[1:]}
    assert len(got) == OTHERS + 2
    for i in range(OTHERS):
        assert got[f"slack:faq:o{i}"][2] == f"[llm] You asked: q{i}"
    assert got["slack:faq:hang-faq"][2] == ASSISTANT_DOWN               # the handler caught it
    assert got["telegram:raw:hang-raw"][2] == "raw fallback: handler failed"  # the processor caught it
    failed = [v for _, v, _ in messages.items if v["chat_key"] == "telegram:raw:hang-raw"
              and "HandlerFailed" in str(v["payload"])]
    assert len(failed) == 1 and "IntegrationTimeout" in str(failed[0]["payload"])
    # Ordering: on the one partition every other chat was answered before either hanging chat's fallback.
    last_other = max(got[f"slack:faq:o{i}"][0] for i in range(OTHERS))
    assert last_other < min(got["slack:faq:hang-faq"][0], got["telegram:raw:hang-raw"][0])
    # Nothing was left hanging on the upstream: both held requests were abandoned by the client.
    assert stats["in_flight_total"] == 0 and stats["peak_in_flight"]["llm"] <= 2 * 8
    assert stats["outcomes"]["llm"]["hang"] == 2 and stats["outcomes"]["llm"]["disconnected"] == 2

    other_ms = sorted(got[f"slack:faq:o{i}"][1] - int(sent * 1000) for i in range(OTHERS))
    hang_ms = [got[k][1] - int(sent * 1000) for k in ("slack:faq:hang-faq", "telegram:raw:hang-raw")]
    print(f"\n{OTHERS} other chats on the same partition: replies {other_ms[0]}..{other_ms[-1]} ms after sending "
          f"(median {other_ms[len(other_ms) // 2]} ms); the hanging chats' fallbacks at {hang_ms} ms "
          f"(handler timeout {HANDLER_TIMEOUT_S} s); upstream peak {stats['peak_in_flight']['llm']} in flight")
