"""Render, lint and validate the Helm chart (run by scripts/check-infra in .venv-infra/main).

For each values set: render with Helm v4 (helm-python-sdk, the Go library), lint with the same
values, parse every rendered document, validate each object against the Kubernetes 1.37
schemas (kubernetes-validate, strict: unknown fields fail), parse the readroom.toml the
ConfigMaps carry, and write the manifests to OUT/<set>.yaml for checkov.

Custom resources (ServiceMonitor, PrometheusRule, SecretProviderClass) have no schema in
kubernetes-validate: they are listed as "not schema-validated" and checked here by hand for
the fields readroom depends on; the PrometheusRule must carry exactly the groups of
infra/observability/alerts.yml.

Usage: python chart.py CHART OUT_DIR
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import yaml
from helm_python.chart import Chart, lint

K8S_VERSION = "1.37.0"

# name -> values files layered over the chart's values.yaml (paths relative to the chart),
# plus inline overrides.
SETS: dict[str, tuple[list[str], dict]] = {
    "default": (["ci/keys.yaml"], {}),
    "default-monitoring": (["ci/keys.yaml"], {"monitoring": {"enabled": True}, "coturn": {"enabled": True}}),
    "pilot": (["ci/keys.yaml", "values-pilot.yaml"], {}),
    "survey": (["ci/keys.yaml", "values-survey.yaml"], {}),
    "portrange": (["ci/keys.yaml", "ci/portrange.yaml"], {}),
    "csi": (["ci/keys.yaml"], {"keys": {
        "server": {"source": "csi", "secretProviderClass": "readroom-server-keys"},
        "worker": {"source": "csi", "secretProviderClass": "readroom-worker-keys"},
    }}),
}

# The key files each kind of pod may hold: the age identity and the watermark key only in
# worker pods, the ticket, audit and secrets keys only in server pods.
KEY_FILES = {
    "server": {"ticket.key", "audit.key", "server-secrets.key"},
    "worker": {"worker.age", "worker-control.key", "watermark.key"},
}
ALL_KEY_FILES = set().union(*KEY_FILES.values())


def check_keys(obj: dict) -> list[str]:
    """Where a server or worker Deployment's key files come from, and that they are its own.

    A Secret is mounted directly (root-owned, fsGroup, 0440: what readroom's key rule accepts),
    read-only, with no init container; a CSI volume is copied by the keyinit container.
    """
    pod = obj["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod.get("containers", [])}
    role = next((r for r in KEY_FILES if r in containers), None)
    if role is None:
        return []
    problems = []
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    inits = pod.get("initContainers") or []
    keys = volumes.get("keys", {})
    if "secret" in keys:
        files = {item["path"] for item in keys["secret"].get("items", [])}
        if keys["secret"].get("defaultMode") != 0o440:
            mode = keys["secret"].get("defaultMode")
            problems.append(f"key Secret mode {oct(mode) if isinstance(mode, int) else mode!r}, not 0o440")
        if inits:
            problems.append("an init container beside a directly mounted key Secret")
    else:
        copy = next((c for c in inits if c["name"] == "keys"), None)
        if copy is None or "csi" not in volumes.get("key-source", {}):
            return [f"{role}: keys are neither a Secret nor a CSI volume copied by keyinit"]
        files = {Path(arg).name for arg in copy["command"] if arg.startswith("/run/readroom/secret/")}
    mounts = [m for m in containers[role].get("volumeMounts", []) if m["name"] == "keys"]
    if not mounts or not all(m.get("readOnly") for m in mounts):
        problems.append("the key directory is not mounted read-only")
    if files != KEY_FILES[role]:
        problems.append(f"holds key files {sorted(files)}, expected {sorted(KEY_FILES[role])}")
    foreign = (files & ALL_KEY_FILES) - KEY_FILES[role]
    if foreign:
        problems.append(f"holds the other tier's keys {sorted(foreign)}")
    return [f"{role}: {p}" for p in problems]

CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def merge(base: dict, over: dict) -> dict:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def load_values(chart: Path, files: list[str], inline: dict) -> dict:
    values: dict = {}
    for name in files:
        merge(values, yaml.safe_load((chart / name).read_text()) or {})
    return merge(values, inline)


def check_crd(obj: dict, alerts: dict) -> list[str]:
    """Hand checks of the custom resources' fields readroom relies on."""
    problems = []
    kind = obj["kind"]
    spec = obj.get("spec") or {}
    if kind == "ServiceMonitor":
        eps = spec.get("endpoints") or []
        if not eps or not spec.get("selector", {}).get("matchLabels"):
            problems.append("ServiceMonitor without endpoints or selector")
        for ep in eps:
            jobs = [r.get("replacement") for r in ep.get("relabelings", []) if r.get("targetLabel") == "job"]
            if jobs not in (["readroom-server"], ["readroom-worker"]):
                problems.append(f"ServiceMonitor endpoint sets job to {jobs}, the rules expect readroom-server/readroom-worker")
            if ep.get("path") != "/metrics":
                problems.append("ServiceMonitor endpoint path is not /metrics")
    elif kind == "PrometheusRule":
        if spec.get("groups") != alerts["groups"]:
            problems.append("PrometheusRule groups differ from infra/observability/alerts.yml")
    return problems


def main() -> int:
    chart = Path(sys.argv[1]).resolve()
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    alerts = yaml.safe_load((chart / "files" / "alerts.yml").read_text())
    loaded = Chart.load(str(chart))
    failures = 0
    summary = []

    # The chart must refuse to render without the two public keys.
    try:
        loaded.render(values={}, name="rr", namespace="readroom")
        print("chart: FAIL rendered without keys.serverPublicKey / config.workers.trustedKeys (it must refuse)")
        failures += 1
    except Exception as err:  # helm_python raises its own error types
        if "keys.serverPublicKey is required" not in str(err):
            print(f"chart: FAIL unexpected error without keys: {err}")
            failures += 1
        else:
            print("chart: values.yaml alone is refused as intended (keys.serverPublicKey is required)")

    for name, (files, inline) in SETS.items():
        values = load_values(chart, files, inline)
        report = lint(str(chart), values=values, strict=True, kube_version="v1.37.0")
        lint_errors = list(report.get("errors") or [])
        lint_errors += [m["error"] for m in report.get("messages", []) if m.get("severity", 0) >= 2]
        for e in lint_errors:
            print(f"chart[{name}]: lint: {e}")
        failures += len(lint_errors)

        rendered = loaded.render(values=values, name="rr", namespace="readroom")
        docs = []
        for template, text in sorted(rendered.items()):
            if not template.endswith((".yaml", ".yml")):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    docs.append((template, doc))
        kinds: dict[str, int] = {}
        unvalidated = []
        for template, obj in docs:
            kind = obj.get("kind", "?")
            kinds[kind] = kinds.get(kind, 0) + 1
            ident = f"{kind}/{obj.get('metadata', {}).get('name')}"
            if (obj.get("apiVersion"), kind) in CRDS:
                unvalidated.append(ident)
                for p in check_crd(obj, alerts):
                    print(f"chart[{name}]: {ident}: {p}")
                    failures += 1
                continue
            try:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                path = "/".join(str(p) for p in err.path)
                print(f"chart[{name}]: {ident} ({template}): {path}: {err.message}")
                failures += 1
            except kubernetes_validate.SchemaNotFoundError:
                print(f"chart[{name}]: {ident}: no Kubernetes {K8S_VERSION} schema for {obj.get('apiVersion')} {kind}")
                failures += 1
            if kind == "Deployment":
                for p in check_keys(obj):
                    print(f"chart[{name}]: {ident}: {p}")
                    failures += 1
            if kind == "ConfigMap" and "readroom.toml" in obj.get("data", {}):
                try:
                    tomllib.loads(obj["data"]["readroom.toml"])
                except tomllib.TOMLDecodeError as err:
                    print(f"chart[{name}]: {ident}: readroom.toml does not parse: {err}")
                    failures += 1
            if kind == "ConfigMap" and "readroom.json" in obj.get("data", {}):
                json.loads(obj["data"]["readroom.json"])
        (out / f"{name}.yaml").write_text(
            "\n".join("---\n" + yaml.safe_dump(obj, sort_keys=False) for _, obj in docs)
        )
        summary.append(
            f"chart[{name}]: {len(docs)} objects ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); "
            f"schema-checked {len(docs) - len(unvalidated)}, CRDs checked by hand: {', '.join(unvalidated) or 'none'}"
        )

    for line in summary:
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
