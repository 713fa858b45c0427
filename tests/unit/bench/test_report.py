"""The bench summary: the end-to-end charts are real PNGs drawn from the sweep, linked from the Markdown."""

from __future__ import annotations

from pathlib import Path

from bench.report import charts, markdown

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def step(offered: float | None, acked: float, delivered: float, p99: float) -> dict[str, float | None]:
    return {"offered_per_s": offered, "acked_per_s": acked, "delivered_per_s": delivered,
            "ack_p50_ms": 3.0, "ack_p99_ms": 20.0, "e2e_p50_ms": p99 / 3, "e2e_p99_ms": p99}


def test_charts_are_pngs_of_the_sweep_and_the_summary_links_them(tmp_path: Path) -> None:
    sweep = {"steps": [step(50, 50, 50, 48), step(100, 100, 100, 82), step(250, 250, 196, 4966),
                       step(None, 2268, 249, 30925)]}
    made = charts(sweep, tmp_path / "20261123T000000Z")
    assert [p.name for p in made] == ["20261123T000000Z-throughput.png", "20261123T000000Z-latency.png"]
    for path in made:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000  # a drawn figure, not an empty canvas
    text = markdown("bench", {"e2e": {"status": "ok", "seconds": 1.0}}, [], made)
    assert "![20261123T000000Z-throughput](20261123T000000Z-throughput.png)" in text


def test_no_sweep_no_charts(tmp_path: Path) -> None:
    assert charts(None, tmp_path / "x") == []
    assert charts({"steps": []}, tmp_path / "x") == []
    assert list(tmp_path.iterdir()) == []
