"""Kafka security settings: one checked view (`botstream.core.kafka.kafka_security`) given to librdkafka
(`security_config`) and to Faust's aiokafka (`faust_credentials`), errors that name the variable to fix,
secrets that never print, the OIDC token provider, and the test CA of the embedded broker."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from confluent_kafka import KafkaError, Producer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from botstream.core import kafka
from botstream.core.errors import ConfigError
from botstream.core.kafka import (
    OAuthClient,
    OidcTokenProvider,
    explain_security_error,
    faust_credentials,
    kafka_security,
    security_config,
)
from botstream.core.secret import Secret
from botstream.core.settings import Settings
from botstream.ops.embedded_kafka import ClientSecurity, Node, TlsFiles, generate_test_tls, server_properties

PROTOCOL = "BOTSTREAM_KAFKA_SECURITY_PROTOCOL"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return generate_test_tls(tmp_path_factory.mktemp("tls"))


def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env, kafka_bootstrap_servers="127.0.0.1:9")


def accepted_by_librdkafka(conf: dict[str, Any]) -> None:
    """librdkafka checks every property (names, values, files) when a client is made."""
    Producer({"bootstrap.servers": "127.0.0.1:9", "log_level": 0, **conf}).flush(0)


# -- the settings --------------------------------------------------------------------------------------------

def test_plaintext_is_the_default_and_needs_nothing() -> None:
    s = settings({})
    assert s.kafka_security_protocol == "PLAINTEXT"
    assert security_config(s) == {}
    assert faust_credentials(s) == (None, None)


def test_an_unknown_protocol_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=f"{PROTOCOL}: 'TLS' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"):
        Settings.from_env({PROTOCOL: "TLS"})
    with pytest.raises(ConfigError, match="BOTSTREAM_KAFKA_SASL_MECHANISM: 'GSSAPI' is not one of"):
        Settings.from_env({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "GSSAPI"})
    with pytest.raises(ConfigError, match=PROTOCOL):  # an override that skipped from_env
        security_config(Settings(kafka_security_protocol="SASL"))


def test_secrets_resolve_from_env_and_file_and_never_print(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "client-secret").write_text("oidc-client-secret-value\n")
    s = Settings.from_env({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                           "BOTSTREAM_KAFKA_SASL_USERNAME": "msk-user",
                           "BOTSTREAM_KAFKA_SASL_PASSWORD": "env:MSK_PASSWORD", "MSK_PASSWORD": "msk-password-value",
                           "BOTSTREAM_KAFKA_SSL_KEY_PASSWORD": f"file:{tmp_path / 'client-secret'}"})
    assert isinstance(s.kafka_sasl_password, Secret) and s.kafka_sasl_password.reveal() == "msk-password-value"
    assert s.kafka_ssl_key_password is not None and s.kafka_ssl_key_password.reveal() == "oidc-client-secret-value"
    shown = s.as_dict()
    assert shown["kafka_sasl_password"] == "Secret(**********, source='env:MSK_PASSWORD')"
    assert "msk-password-value" not in repr(shown) + repr(s) + f"{s.kafka_sasl_password}"

    from botstream.ops.commands.config import cmd_show

    cmd_show(None, s)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "msk-user" in out and "env:MSK_PASSWORD" in out
    assert "msk-password-value" not in out and "oidc-client-secret-value" not in out


def test_a_dangling_secret_reference_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="BOTSTREAM_KAFKA_SASL_PASSWORD: environment variable 'NOPE' is not set"):
        Settings.from_env({"BOTSTREAM_KAFKA_SASL_PASSWORD": "env:NOPE"})
    with pytest.raises(ConfigError, match="BOTSTREAM_KAFKA_OAUTH_CLIENT_SECRET: cannot read secret file"):
        Settings.from_env({"BOTSTREAM_KAFKA_OAUTH_CLIENT_SECRET": "file:/nonexistent/secret"})


# -- librdkafka ----------------------------------------------------------------------------------------------

def test_confluent_cloud_sasl_ssl_plain() -> None:
    s = settings({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "PLAIN",
                  "BOTSTREAM_KAFKA_SASL_USERNAME": "API-KEY", "BOTSTREAM_KAFKA_SASL_PASSWORD": "api-secret"})
    conf = security_config(s)
    assert conf == {"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN", "sasl.username": "API-KEY",
                    "sasl.password": "api-secret"}  # no CA file: librdkafka probes the system's
    accepted_by_librdkafka(conf)


def test_msk_scram_with_a_ca_file(tls: TlsFiles) -> None:
    s = settings({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                  "BOTSTREAM_KAFKA_SASL_USERNAME": "u", "BOTSTREAM_KAFKA_SASL_PASSWORD": "p",
                  "BOTSTREAM_KAFKA_SSL_CA_FILE": str(tls.ca_file)})
    conf = security_config(s)
    assert conf["sasl.mechanisms"] == "SCRAM-SHA-512" and conf["ssl.ca.location"] == str(tls.ca_file)
    accepted_by_librdkafka(conf)


def test_mutual_tls_with_an_encrypted_key(tls: TlsFiles, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(tls.key_file.read_bytes(), None)
    encrypted = tmp_path / "client.key.pem"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"key-pass")))
    s = settings({PROTOCOL: "SSL", "BOTSTREAM_KAFKA_SSL_CA_FILE": str(tls.ca_file),
                  "BOTSTREAM_KAFKA_SSL_CERT_FILE": str(tls.cert_file), "BOTSTREAM_KAFKA_SSL_KEY_FILE": str(encrypted),
                  "BOTSTREAM_KAFKA_SSL_KEY_PASSWORD": "key-pass"})
    conf = security_config(s)
    assert conf == {"security.protocol": "SSL", "ssl.ca.location": str(tls.ca_file),
                    "ssl.certificate.location": str(tls.cert_file), "ssl.key.location": str(encrypted),
                    "ssl.key.password": "key-pass"}
    accepted_by_librdkafka(conf)
    credentials, context = faust_credentials(s)
    auth = credentials_to_aiokafka_auth(credentials, context)
    assert auth["security_protocol"] == "SSL" and auth["ssl_context"] is context
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname

    wrong = settings({PROTOCOL: "SSL", "BOTSTREAM_KAFKA_SSL_CERT_FILE": str(tls.cert_file),
                      "BOTSTREAM_KAFKA_SSL_KEY_FILE": str(encrypted), "BOTSTREAM_KAFKA_SSL_KEY_PASSWORD": "not-it"})
    with pytest.raises(ConfigError, match="BOTSTREAM_KAFKA_SSL_KEY_PASSWORD"):
        faust_credentials(wrong)


def test_oauthbearer_is_librdkafkas_oidc_client_credentials() -> None:
    s = settings({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
                  "BOTSTREAM_KAFKA_OAUTH_TOKEN_URL": "https://idp.example/oauth2/token",
                  "BOTSTREAM_KAFKA_OAUTH_CLIENT_ID": "botstream", "BOTSTREAM_KAFKA_OAUTH_CLIENT_SECRET": "cs",
                  "BOTSTREAM_KAFKA_OAUTH_SCOPE": "kafka"})
    conf = security_config(s)
    assert conf == {"security.protocol": "SASL_SSL", "sasl.mechanisms": "OAUTHBEARER",
                    "sasl.oauthbearer.method": "oidc",
                    "sasl.oauthbearer.token.endpoint.url": "https://idp.example/oauth2/token",
                    "sasl.oauthbearer.client.id": "botstream", "sasl.oauthbearer.client.secret": "cs",
                    "sasl.oauthbearer.scope": "kafka"}
    accepted_by_librdkafka(conf)
    credentials, context = faust_credentials(s)
    auth = credentials_to_aiokafka_auth(credentials, context)
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "OAUTHBEARER"
    provider = auth["sasl_oauth_token_provider"]
    assert isinstance(provider, OidcTokenProvider)
    from aiokafka.abc import AbstractTokenProvider

    assert isinstance(provider, AbstractTokenProvider)  # what aiokafka's connection checks


def test_sasl_plaintext_scram_for_aiokafka() -> None:
    s = settings({PROTOCOL: "SASL_PLAINTEXT", "BOTSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                  "BOTSTREAM_KAFKA_SASL_USERNAME": "u", "BOTSTREAM_KAFKA_SASL_PASSWORD": "scram-pw"})
    credentials, context = faust_credentials(s)
    assert context is None
    auth = credentials_to_aiokafka_auth(credentials, context)
    assert auth == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                    "sasl_plain_username": "u", "sasl_plain_password": "scram-pw", "ssl_context": None}
    assert "scram-pw" not in repr(credentials)


@pytest.mark.parametrize("env, message", [
    ({PROTOCOL: "SASL_SSL"}, "BOTSTREAM_KAFKA_SASL_MECHANISM is needed with BOTSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
    ({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "PLAIN", "BOTSTREAM_KAFKA_SASL_USERNAME": "u"},
     "BOTSTREAM_KAFKA_SASL_PASSWORD is needed with BOTSTREAM_KAFKA_SASL_MECHANISM=PLAIN"),
    ({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
      "BOTSTREAM_KAFKA_OAUTH_CLIENT_ID": "c", "BOTSTREAM_KAFKA_OAUTH_CLIENT_SECRET": "s"},
     "BOTSTREAM_KAFKA_OAUTH_TOKEN_URL is needed"),
    ({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "OAUTHBEARER", "BOTSTREAM_KAFKA_OAUTH_TOKEN_URL": "ftp://x",
      "BOTSTREAM_KAFKA_OAUTH_CLIENT_ID": "c", "BOTSTREAM_KAFKA_OAUTH_CLIENT_SECRET": "s"},
     "BOTSTREAM_KAFKA_OAUTH_TOKEN_URL: 'ftp://x' is not an http"),
    ({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "PLAIN", "BOTSTREAM_KAFKA_SASL_USERNAME": "u",
      "BOTSTREAM_KAFKA_SASL_PASSWORD": "p", "BOTSTREAM_KAFKA_OAUTH_CLIENT_ID": "c"},
     "BOTSTREAM_KAFKA_OAUTH_CLIENT_ID is set, but BOTSTREAM_KAFKA_SASL_MECHANISM=PLAIN does not use it"),
    ({"BOTSTREAM_KAFKA_SASL_MECHANISM": "PLAIN"},
     "BOTSTREAM_KAFKA_SASL_MECHANISM is set, but BOTSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no SASL"),
    ({PROTOCOL: "SASL_PLAINTEXT", "BOTSTREAM_KAFKA_SSL_CA_FILE": "/etc/hostname"},
     "BOTSTREAM_KAFKA_SSL_CA_FILE is set, but BOTSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT uses no TLS"),
    ({PROTOCOL: "SSL", "BOTSTREAM_KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"},
     "BOTSTREAM_KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' is not a readable file"),
    ({PROTOCOL: "SSL", "BOTSTREAM_KAFKA_SSL_CERT_FILE": "/etc/hostname"},
     "BOTSTREAM_KAFKA_SSL_KEY_FILE is needed with BOTSTREAM_KAFKA_SSL_CERT_FILE"),
])
def test_settings_that_do_not_add_up_name_the_variable(env: dict[str, str], message: str) -> None:
    s = settings(env)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        security_config(s)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        faust_credentials(s)


def test_kafka_secrets_are_masked_in_log_lines() -> None:
    from botstream.core.logs import redact

    kafka_security(settings({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "PLAIN",
                             "BOTSTREAM_KAFKA_SASL_USERNAME": "u",
                             "BOTSTREAM_KAFKA_SASL_PASSWORD": "a-kafka-password-7781"}))
    assert redact("connecting with a-kafka-password-7781") == "connecting with **********"


# -- what librdkafka says, as a line naming the setting -------------------------------------------------------

SCRAM = {PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
         "BOTSTREAM_KAFKA_SASL_USERNAME": "botstream", "BOTSTREAM_KAFKA_SASL_PASSWORD": "x"}


def test_librdkafka_errors_become_one_line_naming_the_setting() -> None:
    s = settings(SCRAM)
    auth = explain_security_error(s, KafkaError._AUTHENTICATION, (
        "sasl_ssl://127.0.0.1:1/bootstrap: SASL authentication error: Authentication failed during authentication "
        "due to invalid credentials with SASL mechanism SCRAM-SHA-256 (after 318ms in state AUTH_REQ)"))
    assert auth is not None and "\n" not in auth
    assert "BOTSTREAM_KAFKA_SASL_USERNAME and BOTSTREAM_KAFKA_SASL_PASSWORD" in auth and "'botstream'" in auth
    ca = explain_security_error(s, KafkaError._SSL, (
        "sasl_ssl://127.0.0.1:1/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify "
        "failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured"))
    assert ca is not None and ca.startswith("the broker's TLS certificate is not trusted: check "
                                            "BOTSTREAM_KAFKA_SSL_CA_FILE (unset: the system's CAs)")
    handshake = explain_security_error(s, KafkaError._SSL, "SSL handshake failed: tlsv13 alert certificate required")
    assert handshake is not None and "BOTSTREAM_KAFKA_SSL_CERT_FILE" in handshake
    assert explain_security_error(s, KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:1 failed: Connection refused") \
        is None  # a broker that is down is not a settings problem
    oauth = explain_security_error(settings({PROTOCOL: "SASL_SSL", "BOTSTREAM_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
                                             "BOTSTREAM_KAFKA_OAUTH_TOKEN_URL": "https://idp/t",
                                             "BOTSTREAM_KAFKA_OAUTH_CLIENT_ID": "c",
                                             "BOTSTREAM_KAFKA_OAUTH_CLIENT_SECRET": "s"}),
                                   KafkaError._AUTHENTICATION, "Failed to acquire SASL OAUTHBEARER token")
    assert oauth is not None and "BOTSTREAM_KAFKA_OAUTH_CLIENT_SECRET" in oauth


# -- OAUTHBEARER for aiokafka: the OIDC client-credentials flow ---------------------------------------------

class FakeTokenEndpoint:
    """An OIDC token endpoint behind httpx.MockTransport: checks the client's request like a provider does."""

    def __init__(self, *, expires_in: int | None = 100, status: int = 200) -> None:
        self.expires_in = expires_in
        self.status = status
        self.issued = 0
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        basic = request.headers.get("authorization", "")
        user, _, password = base64.b64decode(basic.removeprefix("Basic ")).decode().partition(":")
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if self.status != 200 or (user, password) != ("botstream-client", "the-client-secret"):
            return httpx.Response(self.status if self.status != 200 else 401, json={"error": "invalid_client"})
        assert request.method == "POST" and form["grant_type"] == "client_credentials" and form["scope"] == "kafka"
        self.issued += 1
        body: dict[str, Any] = {"access_token": f"token-{self.issued}", "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return httpx.Response(200, json=body)


def provider(endpoint: Callable[[httpx.Request], httpx.Response], clock: Callable[[], float],
             secret: str = "the-client-secret") -> OidcTokenProvider:
    client = OAuthClient("https://idp.test/oauth2/token", "botstream-client", Secret(secret), "kafka")
    return OidcTokenProvider(client, transport=httpx.MockTransport(endpoint), clock=clock)


async def test_the_token_is_fetched_once_and_refreshed_at_80_percent_of_its_lifetime() -> None:
    now = [1000.0]
    endpoint = FakeTokenEndpoint(expires_in=100)
    p = provider(endpoint, lambda: now[0])
    assert await asyncio.gather(p.token(), p.token(), p.token()) == ["token-1"] * 3  # one request for all
    now[0] += 79
    assert await p.token() == "token-1"
    now[0] += 2  # past 80 s of 100
    assert await p.token() == "token-2"
    assert endpoint.issued == 2 and p.extensions() == {}


async def test_without_expires_in_the_jwt_exp_claim_sets_the_lifetime() -> None:
    import time

    claims = base64.urlsafe_b64encode(json.dumps({"exp": int(time.time()) + 1000}).encode()).decode().rstrip("=")
    jwt = f"e30.{claims}.sig"

    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": jwt})

    now = [0.0]
    p = provider(endpoint, lambda: now[0])
    assert await p.token() == jwt
    now[0] += 700  # within 80 % of ~1000 s
    assert await p.token() == jwt and p.requests == 1
    now[0] += 200
    await p.token()
    assert p.requests == 2


async def test_refused_client_credentials_name_the_settings() -> None:
    p = provider(FakeTokenEndpoint(), lambda: 0.0, secret="wrong")
    with pytest.raises(ConfigError, match="BOTSTREAM_KAFKA_OAUTH_CLIENT_ID / BOTSTREAM_KAFKA_OAUTH_CLIENT_SECRET: "
                                          r"the token endpoint https://idp.test/oauth2/token refused the client "
                                          r"credentials \(HTTP 401: invalid_client\)"):
        await p.token()


async def test_an_unreachable_or_odd_token_endpoint_names_the_url_setting() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ConfigError, match="BOTSTREAM_KAFKA_OAUTH_TOKEN_URL: cannot get a token from"):
        await provider(down, lambda: 0.0).token()

    def no_token(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token_type": "Bearer"})

    with pytest.raises(ConfigError, match="BOTSTREAM_KAFKA_OAUTH_TOKEN_URL: .* without an access_token"):
        await provider(no_token, lambda: 0.0).token()


# -- the workers' Faust app ----------------------------------------------------------------------------------

def faust_worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], **overrides: Any) -> Any:
    from botstream.core.faust_app import worker_app

    checked: list[Settings] = []
    monkeypatch.setattr(kafka, "check_access", lambda s, **kw: checked.append(s) or True)
    s = Settings.from_env(env, kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path, **overrides)
    app = worker_app(s, "test-app", 6066, "w")
    assert checked == [s]  # the broker is asked before Faust starts
    return app


def test_the_workers_web_server_binds_web_host_and_serves_no_table_or_router_views(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WEB_BIND", "0.0.0.0")  # Faust would prefer its own variables to what it is given
    monkeypatch.setenv("APP_WEB_TABLES_ENABLED", "true")
    app = faust_worker(monkeypatch, tmp_path, {})
    assert app.conf.web_bind == "127.0.0.1" and app.conf.web_host == "127.0.0.1"
    assert not (app.conf.web_tables_enabled or app.conf.web_router_enabled or app.conf.web_stats_enabled
                or app.conf.web_graph_enabled or app.conf.web_metrics_enabled)
    assert [bp for _, bp in app.web.blueprints._enabled] == ["faust.web.apps.production_index:blueprint"]


def test_the_table_and_router_views_only_when_asked_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    app = faust_worker(monkeypatch, tmp_path, {"BOTSTREAM_WEB_TABLE_VIEWS": "1", "BOTSTREAM_WEB_HOST": "10.1.2.3"})
    assert app.conf.web_bind == "10.1.2.3"
    enabled = [bp for _, bp in app.web.blueprints._enabled]
    assert "faust.web.apps.router:blueprint" in enabled and "faust.web.apps.tables.blueprint" in enabled


def test_the_workers_faust_app_gets_the_kafka_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          tls: TlsFiles) -> None:
    app = faust_worker(monkeypatch, tmp_path, {**SCRAM, "BOTSTREAM_KAFKA_SSL_CA_FILE": str(tls.ca_file)})
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "SCRAM-SHA-256"
    assert auth["sasl_plain_username"] == "botstream" and auth["ssl_context"] is app.conf.ssl_context


# -- the embedded broker's test CA and SASL_SSL listener -----------------------------------------------------

def test_the_test_certificate_verifies_for_127_0_0_1_against_its_ca(tls: TlsFiles) -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tls.cert_file, tls.key_file)
    client = ssl.create_default_context(cafile=str(tls.ca_file))
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):
        for name, side, out, peer_in in (("c", c, c_out, s_in), ("s", s, s_out, c_in)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
    assert done == {"c": True, "s": True}
    assert (tls.key_file.stat().st_mode & 0o777) == 0o600
    other = ssl.create_default_context()  # the system's CAs do not know it
    assert not other.get_ca_certs() or all("botstream" not in str(ca) for ca in other.get_ca_certs())


def test_server_properties_of_a_sasl_ssl_broker(tls: TlsFiles, tmp_path: Path) -> None:
    node = Node(1, 19092, 19192, tmp_path / "node-1")
    text = server_properties(node, [node], {"tls": tls, "broker_password": "bpw"})
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19192"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-256,SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-256"
    assert 'username="broker" password="bpw";' in props["listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"]
    assert props["ssl.keystore.type"] == "PEM" and props["ssl.truststore.location"] == str(tls.ca_file)
    # java.util.Properties turns the \n escapes back into the PEM's lines
    assert props["ssl.keystore.key"].replace("\\n", "\n") == tls.key_file.read_text().strip()
    plain = server_properties(node, [node])
    assert "SASL" not in plain and "ssl." not in plain


def test_client_security_as_botstream_settings(tls: TlsFiles, tmp_path: Path) -> None:
    (tmp_path / "botstream.password").write_text("pw123\n")
    client = ClientSecurity("127.0.0.1:1", tls.ca_file, "botstream", tmp_path / "botstream.password")
    s = Settings.from_env(client.env())
    conf = security_config(s)
    assert {k: conf[k] for k in ("security.protocol", "sasl.mechanisms", "sasl.username", "sasl.password",
                                 "ssl.ca.location")} == {k: v for k, v in client.librdkafka().items()
                                                          if k != "bootstrap.servers"}
    assert conf["sasl.password"] == "pw123" and s.kafka_sasl_password is not None
    assert s.kafka_sasl_password.source == f"file:{tmp_path / 'botstream.password'}"
