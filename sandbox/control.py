"""`/_sandbox/*`: how tests, the demo and benches observe and steer the sandbox.

GET  /_sandbox/healthz
GET  /_sandbox/deliveries?platform=&bot=&chat=   accepted messages in arrival order
GET  /_sandbox/stats                              counters (see `SandboxStats`) + order checks
POST /_sandbox/reset                              clear deliveries, stats, limiter state, ids
GET  /_sandbox/config                             the effective `SandboxConfig`
PUT  /_sandbox/config                             JSON merge patch (PATCH accepted too)
GET  /_sandbox/upstream/stats                     the generic upstream: requests, outcomes, in flight, peak
POST /_sandbox/upstream/reset                     clear those (and the peak) only
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from botstream.sandbox.config import ConfigError
from botstream.sandbox.engine import SandboxEngine
from botstream.sandbox.http import Reply, Request, json_reply

__all__ = ["CONTROL_PREFIX", "handle_control"]

CONTROL_PREFIX = "/_sandbox/"


def handle_control(engine: SandboxEngine, req: Request) -> Reply:
    name = req.path[len(CONTROL_PREFIX) :].rstrip("/")
    method = req.method
    if name == "healthz" and method == "GET":
        return json_reply(200, {"ok": True})
    if name == "deliveries" and method == "GET":
        q = {k: v[-1] for k, v in parse_qs(req.query).items()}
        found = engine.ledger.query(q.get("platform"), q.get("bot"), q.get("chat"))
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
            return json_reply(200, engine.config.to_dict())
        if method in ("PUT", "PATCH"):
            try:
                patch = json.loads(req.body or b"{}")
                engine.update_config(engine.config.merged(patch))
            except (ValueError, ConfigError) as exc:
                return json_reply(400, {"ok": False, "error": str(exc)})
            return json_reply(200, engine.config.to_dict())
    if name in ("healthz", "deliveries", "stats", "reset", "config", "upstream/stats", "upstream/reset"):
        return json_reply(405, {"ok": False, "error": "method_not_allowed"})
    return json_reply(404, {"ok": False, "error": "not_found"})
