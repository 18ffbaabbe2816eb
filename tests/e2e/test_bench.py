"""The load-test harness runs end to end and writes its three outputs (no
figure is asserted: speed belongs to `make bench`)."""

import json
import os
import subprocess

from conftest import BUILD, ROOT


def test_quick_bench_writes_table_json_and_chart(tmp_path):
    p = subprocess.run([os.path.join(ROOT, "bench", "run"), "--quick", "--duration", "1", "--connections", "4",
                        "--build", BUILD, "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "passthrough" in p.stdout and "portcullis" in p.stdout
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert set(doc["machine"]) >= {"date", "cpu", "cores"}
    rows = {(r["scenario"], r["target"]): r for r in doc["rows"]}
    assert set(rows) == {("direct", "direct"), ("passthrough", "portcullis")}
    for r in rows.values():
        assert r["valid"] and r["rps"] > 0 and len(r["runs"]) == 3
        for k in ("p50_ms", "p99_ms", "cpu_us_per_req", "rss_kb", "ratio_direct"):
            assert r[k] is not None
    svg = (tmp_path / "latest.svg").read_text()
    assert svg.startswith("<svg") and "portcullis" in svg


def test_unknown_scenario_is_refused():
    p = subprocess.run([os.path.join(ROOT, "bench", "run"), "--scenarios", "nope"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "unknown scenario" in p.stderr
