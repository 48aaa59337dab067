"""Cross-checks of infra/observability (run by scripts/check-infra; plain Python, no packages
beyond PyYAML from the venv).

- METRICS.md lists the contract: every `readroom_*` series in its tables, with a type.
- alerts.yml and the Grafana dashboard may name only those series (histograms through their
  _bucket/_sum/_count series), and the dashboard must show every one of them.
- The dashboard is valid JSON with unique panel ids and a PromQL expression on every panel.

Usage: python observability.py OBSERVABILITY_DIR
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

SERIES = re.compile(r"\breadroom_[a-z0-9_]+")
ROW = re.compile(r"^\|\s*`(readroom_[a-z0-9_]+)`\s*\|\s*(counter|gauge|histogram)\s*\|")


def base(name: str, histograms: set[str]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)]
    return name


def main() -> int:
    root = Path(sys.argv[1])
    contract: dict[str, str] = {}
    for line in (root / "METRICS.md").read_text().splitlines():
        m = ROW.match(line)
        if m:
            contract[m.group(1)] = m.group(2)
    histograms = {n for n, t in contract.items() if t == "histogram"}
    problems = []

    alerts = yaml.safe_load((root / "alerts.yml").read_text())
    rule_series = set()
    for group in alerts["groups"]:
        for rule in group["rules"]:
            rule_series |= {base(s, histograms) for s in SERIES.findall(rule["expr"])}
    for s in sorted(rule_series - contract.keys()):
        problems.append(f"alerts.yml names {s}, which METRICS.md does not list")

    dash = json.loads((root / "grafana" / "readroom.json").read_text())
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        problems.append("dashboard panel ids are not unique")
    dash_series = set()
    panels = 0
    for p in dash["panels"]:
        if p.get("type") == "row":
            continue
        panels += 1
        exprs = [t.get("expr", "") for t in p.get("targets", [])]
        if not exprs or not all(exprs):
            problems.append(f"dashboard panel {p.get('title')!r} has no PromQL expression")
        for e in exprs:
            dash_series |= {base(s, histograms) for s in SERIES.findall(e)}
    for s in sorted(dash_series - contract.keys()):
        problems.append(f"the dashboard names {s}, which METRICS.md does not list")
    for s in sorted(contract.keys() - dash_series):
        problems.append(f"METRICS.md lists {s}, but no dashboard panel shows it")

    for p in problems:
        print(f"observability: {p}")
    print(
        f"observability: METRICS.md lists {len(contract)} series; alerts use {len(rule_series)}, "
        f"the dashboard's {panels} panels show {len(dash_series & contract.keys())}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
