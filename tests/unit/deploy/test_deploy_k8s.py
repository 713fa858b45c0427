"""deploy/k8s, checked without a cluster: the manifests parse, KEDA scales things that exist on the
consumer groups the workers really use (bounded by the partition count, the bootstrap address read
from the ConfigMap), every container runs a real botstream command, kustomize sets every image's
name and tag, each stage has a PodDisruptionBudget, the workers report ready only after recovery,
the TLS Ingress example routes webhooks only, and the bots ConfigMap loads with the Secret example's keys."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from botstream import __version__
from botstream.core.bots import load_bots_file
from botstream.core.settings import Settings
from tests.unit.deploy.support import (
    K8S_DIR,
    PENDING_SETTINGS,
    parse_botstream_args,
    settings_env_names,
    yaml_documents,
)

FILES = sorted(K8S_DIR.glob("*.yaml"))
DOCS: list[tuple[Path, dict[str, Any]]] = [(f, d) for f in FILES for d in yaml_documents(f)]
RESOURCES = [d for _, d in DOCS if d.get("kind") != "Kustomization"]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "DaemonSet"}


def of_kind(*kinds: str) -> list[dict[str, Any]]:
    return [d for d in RESOURCES if d["kind"] in kinds]


def named(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in RESOURCES if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def config() -> dict[str, str]:
    return dict(named("ConfigMap", "botstream-config")["data"])


def test_every_manifest_parses_and_is_a_k8s_object() -> None:
    assert FILES
    for path, doc in DOCS:
        assert doc.get("apiVersion") and doc.get("kind"), f"{path.name}: not a Kubernetes object"
        if doc["kind"] not in ("Kustomization", "Namespace"):
            assert doc["metadata"].get("namespace") == "botstream", f"{path.name}: {doc['kind']} without namespace"


def test_the_stages_are_deployed() -> None:
    assert named("Deployment", "ingest") and named("Service", "ingest")
    assert named("HorizontalPodAutoscaler", "ingest")["spec"]["scaleTargetRef"]["name"] == "ingest"
    assert named("StatefulSet", "streams")["spec"]["volumeClaimTemplates"], "streams keeps RocksDB on a volume"
    assert named("Deployment", "sinks")
    assert named("Secret", "botstream-bot-credentials")
    assert named("ConfigMap", "botstream-bots")


@pytest.mark.parametrize("workload", of_kind(*WORKLOAD_KINDS), ids=lambda w: f"{w['kind']}/{w['metadata']['name']}")
def test_containers_run_real_botstream_commands(workload: dict[str, Any]) -> None:
    for c in containers(workload):
        command = c.get("command")
        if command is not None:  # overriding the image's ENTRYPOINT: it must still be botstream
            assert command[0] in ("botstream", "/opt/venv/bin/botstream"), c["name"]
            argv = [*command[1:], *c.get("args", [])]
        else:
            argv = list(c["args"])
        args = parse_botstream_args(argv)
        assert args.command == c["name"].split("-")[0], f"container {c['name']} runs `botstream {args.command}`"


@pytest.mark.parametrize("workload", of_kind(*WORKLOAD_KINDS), ids=lambda w: f"{w['kind']}/{w['metadata']['name']}")
def test_workloads_run_as_non_root_with_known_settings(workload: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    known = settings_env_names() | PENDING_SETTINGS
    for c in pod["containers"]:
        unknown = {e["name"] for e in c.get("env", []) if e["name"] not in known}
        assert not unknown, f"{c['name']}: {unknown} are not settings"
        refs = {r.get("configMapRef", {}).get("name") for r in c.get("envFrom", [])}
        assert "botstream-config" in refs


def test_config_map_holds_only_settings() -> None:
    unknown = set(config()) - settings_env_names() - PENDING_SETTINGS
    assert not unknown, f"{unknown} are not settings (botstream/settings.py)"
    Settings.from_env({k: v for k, v in config().items() if k not in PENDING_SETTINGS})  # and they parse


SCALED_OBJECTS = of_kind("ScaledObject")


def test_keda_scales_streams_and_sinks() -> None:
    targets = {so["spec"]["scaleTargetRef"]["name"] for so in SCALED_OBJECTS}
    assert targets == {"streams", "sinks"}


@pytest.mark.parametrize("so", SCALED_OBJECTS, ids=lambda so: so["metadata"]["name"])
def test_scaled_object_targets_an_existing_workload(so: dict[str, Any]) -> None:
    ref = so["spec"]["scaleTargetRef"]
    kind = ref.get("kind", "Deployment")  # KEDA's default
    assert kind in ("Deployment", "StatefulSet")
    workload = named(kind, ref["name"])
    assert workload["metadata"]["namespace"] == so["metadata"]["namespace"]
    hpas = [h for h in of_kind("HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == ref["name"]]
    assert not hpas, "KEDA creates its own HPA; a second one on the same workload fights it"


@pytest.mark.parametrize("so", SCALED_OBJECTS, ids=lambda so: so["metadata"]["name"])
def test_scaled_object_is_bounded_by_the_partitions(so: dict[str, Any]) -> None:
    partitions = int(config().get("BOTSTREAM_PARTITIONS", Settings().partitions))
    assert partitions == Settings().partitions  # the catalog's default, which the ScaledObjects are written for
    spec = so["spec"]
    assert 1 <= spec.get("minReplicaCount", 0) <= spec["maxReplicaCount"] <= partitions


@pytest.mark.parametrize("so", SCALED_OBJECTS, ids=lambda so: so["metadata"]["name"])
def test_scaled_object_watches_the_workers_consumer_group(so: dict[str, Any]) -> None:
    settings = Settings.from_env({k: v for k, v in config().items() if k not in PENDING_SETTINGS})
    stage = so["spec"]["scaleTargetRef"]["name"]
    source_topic = {"streams": "updates", "sinks": "replies"}[stage]
    triggers = so["spec"]["triggers"]
    assert triggers and all(t["type"] == "kafka" for t in triggers)
    for t in triggers:
        meta = t["metadata"]
        assert meta["consumerGroup"] == f"{settings.topic_prefix}-{stage}"  # the Faust app id
        assert meta["topic"] == settings.topic(source_topic)
        # the address is read from the ConfigMap, through the target container's envFrom: never repeated here
        assert "bootstrapServers" not in meta and meta["bootstrapServersFromEnv"] == "KAFKA_BOOTSTRAP_SERVERS"
        assert meta["bootstrapServersFromEnv"] in config()
        ref = so["spec"]["scaleTargetRef"]
        target = next(c for c in containers(named(ref["kind"], ref["name"])) if c["name"] == ref["envSourceContainerName"])
        assert {"configMapRef": {"name": "botstream-config"}} in target["envFrom"]
        assert int(meta["lagThreshold"]) > 0
        assert meta.get("offsetResetPolicy", "latest") == "earliest"  # as faust_app.py's consumers


def test_bots_config_map_loads_with_the_secret_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bots_toml = named("ConfigMap", "botstream-bots")["data"]["bots.toml"]
    secret = named("Secret", "botstream-bot-credentials")["stringData"]
    for key, value in secret.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "bots.toml"
    path.write_text(bots_toml)
    bots = load_bots_file(path)
    assert bots
    referenced = {v.removeprefix("env:") for b in tomllib.loads(bots_toml)["bots"] for v in b.values()
                  if isinstance(v, str) and v.startswith("env:")}
    assert referenced == set(secret), "the Secret example and the bots file disagree on the credential names"
    assert Path(config()["BOTSTREAM_BOTS_FILE"]).name == "bots.toml"


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = next(d for _, d in DOCS if d.get("kind") == "Kustomization")
    listed = set(kustomization["resources"])
    expected = {f.name for f in FILES if f.name not in ("kustomization.yaml",) and ".example." not in f.name}
    assert listed == expected


@pytest.mark.parametrize("name", ["ingest", "streams", "sinks"])
def test_stages_mount_the_bots_file_where_the_setting_says(name: str) -> None:
    workload = next(w for w in of_kind("Deployment", "StatefulSet") if w["metadata"]["name"] == name)
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    bots_file = Path(config()["BOTSTREAM_BOTS_FILE"])
    for c in containers(workload):
        mounts = [m for m in c["volumeMounts"] if volumes.get(m["name"], {}).get("configMap", {}).get("name")
                  == "botstream-bots"]
        assert [Path(m["mountPath"]) for m in mounts] == [bots_file.parent], c["name"]
        secrets = {r.get("secretRef", {}).get("name") for r in c.get("envFrom", [])}
        assert "botstream-bot-credentials" in secrets, "the bots file's env: credentials come from the Secret"


def kustomization() -> dict[str, Any]:
    return next(d for _, d in DOCS if d.get("kind") == "Kustomization")


def kustomize_image(image: str, entries: list[dict[str, str]]) -> str:
    """What kustomize's `images:` does to one container image: the entry whose `name` is the image's
    name (without tag or digest) replaces the name with `newName` and the tag with `newTag`."""
    name, _, tag = image.partition("@")[0].partition(":")
    for entry in entries:
        if entry["name"] == name:
            return f"{entry.get('newName', name)}:{entry.get('newTag', tag or 'latest')}"
    return image


def test_kustomize_sets_every_image_name_and_tag() -> None:
    entries = kustomization()["images"]
    assert [e["name"] for e in entries] == ["botstream"]
    entry = entries[0]
    assert entry["newName"] and entry["newTag"] == __version__  # the release the manifests are written for
    images = [c["image"] for w in of_kind(*WORKLOAD_KINDS) for c in containers(w)]
    assert images and set(images) == {"botstream"}, "the tag lives in kustomization.yaml only"
    assert {kustomize_image(i, entries) for i in images} == {f"{entry['newName']}:{entry['newTag']}"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_renders_the_images() -> None:
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S_DIR)], capture_output=True, text=True, timeout=60,
                              check=True).stdout
    entry = kustomization()["images"][0]
    images = {line.split("image:", 1)[1].strip() for line in rendered.splitlines() if line.strip().startswith("image:")}
    assert images == {f"{entry['newName']}:{entry['newTag']}"}


@pytest.mark.parametrize("stage", ["ingest", "streams", "sinks"])
def test_each_stage_has_a_pod_disruption_budget(stage: str) -> None:
    pdb = named("PodDisruptionBudget", stage)
    workload = next(w for w in of_kind("Deployment", "StatefulSet") if w["metadata"]["name"] == stage)
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    rules = {k for k in ("minAvailable", "maxUnavailable") if k in pdb["spec"]}
    assert len(rules) == 1
    if "minAvailable" in rules:  # a drain must still be able to evict one pod
        hpa = named("HorizontalPodAutoscaler", stage)
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    else:
        assert pdb["spec"]["maxUnavailable"] == 1  # one rebalance at a time


@pytest.mark.parametrize("stage", ["streams", "sinks"])
def test_workers_are_ready_only_after_recovery(stage: str) -> None:
    workload = next(w for w in of_kind("Deployment", "StatefulSet") if w["metadata"]["name"] == stage)
    [c] = containers(workload)
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "web"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/metrics"  # alive while recovering


def test_ingress_example_terminates_tls_and_routes_only_webhooks() -> None:
    [ingress] = yaml_documents(K8S_DIR / "ingress.example.yaml")
    assert ingress["kind"] == "Ingress" and "ingress.example.yaml" not in kustomization()["resources"]
    spec = ingress["spec"]
    hosts = {h for t in spec["tls"] for h in t["hosts"]}
    assert {r["host"] for r in spec["rules"]} <= hosts and all(t["secretName"] for t in spec["tls"])
    service = named("Service", "ingest")
    ports = {p["name"] for p in service["spec"]["ports"]}
    for rule in spec["rules"]:
        for path in rule["http"]["paths"]:
            assert path["path"] == "/webhooks/" and path["pathType"] == "Prefix"
            backend = path["backend"]["service"]
            assert backend["name"] == "ingest" and backend["port"]["name"] in ports
    body = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(body.rstrip("m")) * 1_000_000 >= 3_000_000  # WhatsApp bodies of up to 3 MB reach ingest
