"""`[bots.integrations.<name>]` in the bots file: values, defaults, secrets, and errors that point."""

from __future__ import annotations

from pathlib import Path

import pytest

from botstream.core.bots import BreakerSettings, load_bots_file, parse_bots
from botstream.core.errors import ConfigError
from botstream.core.settings import REPO_ROOT

BOT = '''[[bots]]
id = "faq"
platform = "generic"
secret = "s3cret"
handler = "botstream.streams.examples.faq"
'''

FULL = BOT + '''
[bots.integrations.llm]
base_url = "https://llm.example/api/"
auth_header = "Authorization"
auth_scheme = "Bearer"
auth_value = "env:LLM_KEY"
max_concurrency = 8
slot_wait_s = 0.5
timeout_s = 3
retries = 2
backoff_s = 0.1
max_retry_after_s = 10
[bots.integrations.llm.breaker]
failure_ratio = 0.25
min_calls = 10
window_s = 60
open_s = 5
half_open_probes = 2

[bots.integrations.crm]
base_url = "http://crm.internal"
auth_header = "X-Api-Key"
auth_value = "file:crm.key"
'''


def test_integrations_are_parsed_with_their_guards(tmp_path: Path) -> None:
    (tmp_path / "crm.key").write_text("crm-key-123\n")
    path = tmp_path / "bots.toml"
    path.write_text(FULL)
    bots = load_bots_file(path, environ={"LLM_KEY": "sk-llm-secret"})
    faq = bots["faq"]
    llm, crm = faq.integrations["llm"], faq.integrations["crm"]
    assert llm.base_url == "https://llm.example/api" and llm.max_concurrency == 8 and llm.slot_wait_s == 0.5
    assert (llm.timeout_s, llm.retries, llm.backoff_s, llm.max_retry_after_s) == (3.0, 2, 0.1, 10.0)
    assert llm.breaker == BreakerSettings(failure_ratio=0.25, min_calls=10, window_s=60.0, open_s=5.0,
                                          half_open_probes=2)
    assert llm.auth_headers() == {"Authorization": "Bearer sk-llm-secret"}
    assert crm.auth_headers() == {"X-Api-Key": "crm-key-123"}
    # Defaults where nothing is said.
    assert (crm.max_concurrency, crm.timeout_s, crm.retries, crm.backoff_s) == (40, 5.0, 3, 0.25)
    assert crm.breaker == BreakerSettings()
    # Secrets never print, and the log redaction learns them.
    shown = repr(faq.as_dict()) + repr(faq.integrations)
    assert "sk-llm-secret" not in shown and "crm-key-123" not in shown and "env:LLM_KEY" in shown
    assert {"sk-llm-secret", "crm-key-123"} <= set(bots.all_secrets())


def test_a_bot_without_integrations_has_none_and_auth_is_optional() -> None:
    bots = parse_bots(BOT + '[bots.integrations.open]\nbase_url = "http://x"\n', environ={})
    assert bots["faq"].integrations["open"].auth_headers() == {}
    assert parse_bots(BOT, environ={})["faq"].integrations == {}


def test_the_example_bots_file_declares_the_llm_integration_of_the_faq_bots() -> None:
    bots = load_bots_file(REPO_ROOT / "deploy" / "bots.example.toml")
    assert bots["faq"].integrations["llm"].base_url == "http://127.0.0.1:8090/upstream/llm"
    assert "llm" in bots["faq-discord"].integrations and bots["echo"].integrations == {}


TWO = BOT + '''
[bots.integrations.a]
base_url = "http://a"
timeout_s = 1

[bots.integrations.b]
base_url = "http://b"
timeout_s = 0
'''


@pytest.mark.parametrize("text, message", [
    (TWO, r"<bots>:13: bot 'faq', key 'integrations.b.timeout_s': must be a number > 0"),
    (BOT + '[bots.integrations.llm]\nbase_url = "ftp://x"\n', r"<bots>:7: bot 'faq', key 'integrations.llm.base_url'"),
    (BOT + '[bots.integrations.llm]\ntimeout_s = 1\n', r"<bots>:6: bot 'faq', key 'integrations.llm.base_url': missing"),
    (BOT + '[bots.integrations.llm]\nbase_url = "http://x"\ncolour = "red"\n',
     r"<bots>:8: bot 'faq', key 'integrations.llm.colour': unknown key"),
    (BOT + '[bots.integrations.llm]\nbase_url = "http://x"\nauth_header = "Authorization"\nauth_value = "env:NOPE_LLM"\n',
     r"<bots>:9: bot 'faq', key 'integrations.llm.auth_value': environment variable 'NOPE_LLM' is not set"),
    (BOT + '[bots.integrations.llm]\nbase_url = "http://x"\nauth_value = "k"\n',
     r"key 'integrations.llm.auth_header': auth_header and auth_value go together"),
    (BOT + '[bots.integrations.llm]\nbase_url = "http://x"\nmax_concurrency = 2.5\n',
     r"<bots>:8: .*'integrations.llm.max_concurrency': must be an integer >= 1"),
    (BOT + '[bots.integrations.llm]\nbase_url = "http://x"\nretries = -1\n',
     r"'integrations.llm.retries': must be an integer >= 0"),
    (BOT + '[bots.integrations.llm]\nbase_url = "http://x"\n[bots.integrations.llm.breaker]\nfailure_ratio = 1.5\n',
     r"<bots>:9: bot 'faq', key 'integrations.llm.breaker.failure_ratio': must be within \(0, 1\]"),
    (BOT + '[bots.integrations.llm]\nbase_url = "http://x"\n[bots.integrations.llm.breaker]\nprobes = 1\n',
     r"<bots>:9: .*'integrations.llm.breaker.probes': unknown key"),
    (BOT + '[bots.integrations."my llm"]\nbase_url = "http://x"\n', r"<bots>:6: .*'integrations.my llm': integration names"),
    (BOT + '[[bots.integrations]]\nname = "llm"\n', r"key 'integrations': must be tables"),
])
def test_bad_integrations_name_line_bot_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_bots(text, environ={})
