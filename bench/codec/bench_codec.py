"""Encode+decode of a typical Update, against json.dumps/loads of the same record.

Why this baseline: JSON is what the pipeline would use without Avro, so the codec must not
make the hot path slower than that. The JSON side base64-encodes the raw webhook bytes (JSON
cannot carry bytes), and both sides do a full round trip per iteration. fastavro's
schemaless writer/reader is printed too, as the reason the codec compiles schemas itself.

Runs are best-of-``--repeat`` (the machine is shared; the minimum is the least disturbed run).
The last line is one JSON object for machines.

    python -m bench.codec.bench_codec [--n 50000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import time
from collections.abc import Callable
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from botstream.schemas.codec import Codec
from botstream.schemas.records import Update

RAW = (
    b'{"update_id":987654321,"message":{"message_id":4711,"from":{"id":42,"is_bot":false,'
    b'"first_name":"Ada","last_name":"Lovelace","username":"ada","language_code":"en"},'
    b'"chat":{"id":123456789,"first_name":"Ada","last_name":"Lovelace","username":"ada",'
    b'"type":"private"},"date":1700000000,"text":"hello there, how are you?"}}'
)


def typical_update() -> Update:
    return {
        "platform": "telegram",
        "bot_id": "support",
        "chat_id": "123456789",
        "chat_type": "private",
        "user_id": "42",
        "update_id": "987654321",
        "kind": "message",
        "text": "hello there, how are you?",
        "attachments": [],
        "reply_to": None,
        "thread_id": None,
        "locale": "en",
        "platform_ts_ms": 1_700_000_000_000,
        "received_at_ms": 1_700_000_000_123,
        "correlation_id": "c0ffee00-1234-4567-89ab-0123456789ab",
        "from_bot": False,
        "platform_meta": {},
        "traceparent": None,
        "raw": RAW,
    }


def _best_rate(round_trip: Callable[[], object], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(n):
            round_trip()
        best = min(best, time.perf_counter() - started)
    return n / best


def run(n: int, repeat: int) -> dict[str, Any]:
    codec = Codec()
    record: dict[str, Any] = dict(typical_update())
    schema = codec.library.current("update").parsed

    def codec_round_trip() -> object:
        return codec.decode("update", codec.encode("update", record))

    def json_round_trip() -> object:
        data = json.dumps({**record, "raw": base64.b64encode(record["raw"]).decode("ascii")}).encode()
        decoded = json.loads(data)
        decoded["raw"] = base64.b64decode(decoded["raw"])
        return decoded

    def fastavro_round_trip() -> object:
        out = io.BytesIO()
        schemaless_writer(out, schema, record)
        return schemaless_reader(io.BytesIO(out.getvalue()), schema, None)

    for check in (codec_round_trip, json_round_trip, fastavro_round_trip):
        assert check() == record, f"{check.__name__} does not round-trip"

    rates = {}
    for label, fn in (
        ("codec", codec_round_trip),
        ("json", json_round_trip),
        ("fastavro", fastavro_round_trip),
    ):
        fn()  # warm up
        rates[label] = _best_rate(fn, n, repeat)
    json_bytes = len(json.dumps({**record, "raw": base64.b64encode(RAW).decode("ascii")}).encode())
    return {
        "bench": "codec",
        "record": "update",
        "n": n,
        "repeat": repeat,
        "raw_bytes": len(RAW),
        "codec_records_per_s": round(rates["codec"]),
        "json_records_per_s": round(rates["json"]),
        "fastavro_records_per_s": round(rates["fastavro"]),
        "ratio_vs_json": round(rates["codec"] / rates["json"], 3),
        "fastavro_ratio_vs_json": round(rates["fastavro"] / rates["json"], 3),
        "codec_bytes": len(codec.encode("update", record)),
        "json_bytes": json_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=50_000, help="round trips per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best one counts")
    args = parser.parse_args()
    result = run(args.n, args.repeat)
    print(f"Update encode+decode, {result['n']} round trips, best of {result['repeat']} runs")
    print(
        f"  codec (single-object Avro): {result['codec_records_per_s']:>9,} records/s  {result['codec_bytes']} bytes"
    )
    print(
        f"  json + base64 (baseline)  : {result['json_records_per_s']:>9,} records/s  {result['json_bytes']} bytes"
    )
    print(f"  fastavro schemaless       : {result['fastavro_records_per_s']:>9,} records/s")
    print(f"  ratio codec/json          : {result['ratio_vs_json']:.2f}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
