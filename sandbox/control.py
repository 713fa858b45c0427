"""`/_sandbox/*`: how tests, the demo and benches observe and steer the sandbox.

GET  /_sandbox/healthz
GET  /_sandbox/deliveries?platform=&bot=&chat=&since_ms=   accepted messages in arrival order
GET  /_sandbox/stats                              counters (see `SandboxStats`) + order checks
POST /_sandbox/reset                              clear deliveries, stats, limiter state, ids      (token)
GET  /_sandbox/config                             the effective `SandboxConfig`, secrets masked    (token)
PUT  /_sandbox/config                             JSON merge patch (PATCH accepted too)            (token)
GET  /_sandbox/upstream/stats                     the generic upstream: requests, outcomes, in flight, peak
POST /_sandbox/upstream/reset                     clear those (and the peak) only                  (token)

Routes marked (token) need the control token (`botstream.sandbox.auth`), else 401. The config never
leaves the sandbox with a bot token or the upstream's authorization in clear: they are masked, and
a patch that writes a masked value back is refused (400), so a read-modify-write cannot wipe them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from botstream.core.secret import MASK
from botstream.sandbox.auth import authorized
from botstream.sandbox.config import ConfigError
from botstream.sandbox.engine import SandboxEngine
from botstream.sandbox.http import Reply, Request, json_reply

__all__ = ["CONTROL_PREFIX", "PROTECTED", "handle_control", "masked_config"]

CONTROL_PREFIX = "/_sandbox/"
PROTECTED = frozenset({"config", "reset", "upstream/reset"})
UNAUTHORIZED = json_reply(401, {"ok": False, "error": "unauthorized"}, ((b"www-authenticate", b"Bearer"),))


def masked_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config as the control API shows it: the bots' tokens and the upstream's authorization masked."""
    out = dict(config)
    out["bots"] = {platform: [MASK for _ in tokens] for platform, tokens in (config.get("bots") or {}).items()}
    upstream = dict(out.get("upstream") or {})
    if upstream.get("authorization"):
        upstream["authorization"] = MASK
    out["upstream"] = upstream
    return out


def _writes_a_mask(patch: Any) -> bool:
    if isinstance(patch, dict):
        return any(_writes_a_mask(v) for v in patch.values())
    if isinstance(patch, list):
        return any(_writes_a_mask(v) for v in patch)
    return patch == MASK


def handle_control(engine: SandboxEngine, req: Request, token: str | None = None) -> Reply:
    """Answer one control request; `token` None switches the token check off (in-process tests only)."""
    name = req.path[len(CONTROL_PREFIX) :].rstrip("/")
    method = req.method
    if name in PROTECTED and token is not None and not authorized(req.headers, token):
        return UNAUTHORIZED
    if name == "healthz" and method == "GET":
        return json_reply(200, {"ok": True})
    if name == "deliveries" and method == "GET":
        q = {k: v[-1] for k, v in parse_qs(req.query).items()}
        since = q.get("since_ms")
        found = engine.ledger.query(q.get("platform"), q.get("bot"), q.get("chat"),
                                    int(since) if since and since.isdigit() else None)
        return json_reply(200, {"count": len(found), "deliveries": [d.to_json() for d in found]})
    if name == "stats" and method == "GET":
        snap = engine.stats.snapshot()
        ledger = engine.ledger
        snap.update(
            order_violations=ledger.order_violations,
            duplicate_seqs=ledger.duplicate_seqs,
            violations=list(ledger.violations),
            deliveries_retained=len(ledger),
            upstream=engine.upstream.stats.snapshot(),
        )
        return json_reply(200, snap)
    if name == "upstream/stats" and method == "GET":
        return json_reply(200, engine.upstream.stats.snapshot())
    if name == "upstream/reset" and method == "POST":
        engine.upstream.stats.reset()
        return json_reply(200, {"ok": True})
    if name == "reset" and method == "POST":
        engine.reset()
        return json_reply(200, {"ok": True})
    if name == "config":
        if method == "GET":
            return json_reply(200, masked_config(engine.config.to_dict()))
        if method in ("PUT", "PATCH"):
            try:
                patch = json.loads(req.body or b"{}")
                if _writes_a_mask(patch):
                    raise ConfigError("a masked value cannot be written back; send the secret itself or leave it out")
                engine.update_config(engine.config.merged(patch))
            except (ValueError, ConfigError) as exc:
                return json_reply(400, {"ok": False, "error": str(exc)})
            return json_reply(200, masked_config(engine.config.to_dict()))
    if name in ("healthz", "deliveries", "stats", "reset", "config", "upstream/stats", "upstream/reset"):
        return json_reply(405, {"ok": False, "error": "method_not_allowed"})
    return json_reply(404, {"ok": False, "error": "not_found"})
