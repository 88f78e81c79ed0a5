"""The Helm chart, rendered by the real Helm engine (helm-python-sdk embeds Helm's Go SDK)
for the default and a non-default value set, validated against the Kubernetes schemas."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from producer.config import ENV_PREFIX, Settings
from tests.unit.deploy_support import (
    CHART,
    DASHBOARD,
    ROOT,
    env_names_in,
    load_from_env,
    metric_names_in,
    unknown_metrics,
    unknown_settings,
)

Manifest = dict[str, Any]
RELEASE, NAMESPACE = "cdc", "data"
FULLNAME = f"{RELEASE}-zendesk-cdc"
# the oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest known
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
FULL_VALUES: dict[str, Any] = yaml.safe_load((CHART / "ci" / "full-values.yaml").read_text())


def render(values: dict[str, Any] | None = None) -> list[Manifest]:
    """Every Kubernetes object the chart renders for these values."""
    chart = helm.Chart.load(CHART)
    out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[Manifest] = []
    for path, text in sorted(out.items()):
        if path.endswith(".txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def one(docs: list[Manifest], kind: str) -> Manifest:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def container(docs: list[Manifest]) -> dict[str, Any]:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def env(docs: list[Manifest]) -> dict[str, dict[str, Any]]:
    entries = container(docs)["env"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env entries: {names}"
    return {e["name"]: e for e in entries}


VALUE_SETS: dict[str, dict[str, Any] | None] = {"default": None, "full": FULL_VALUES}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(VALUE_SETS[request.param])


@pytest.fixture(scope="module")
def full() -> list[Manifest]:
    return render(FULL_VALUES)


@pytest.fixture(scope="module")
def default() -> list[Manifest]:
    return render()


# --- the real Helm engine: lint and schema validation --------------------------------


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_helm_lint_strict_is_clean(values: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[values], strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    # severity 2 = warning, 3 = error; info ("icon is recommended") is fine
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_manifests_validate_against_kubernetes_schemas(
    manifests: list[Manifest], kube_version: str
) -> None:
    builtin = [d for d in manifests if d["kind"] not in CRD_KINDS]
    assert {d["kind"] for d in builtin} >= {"Deployment", "Service", "ServiceAccount"}
    for doc in builtin:
        # strict: unknown fields (a typo like `readOnlyRootFileSystem`) fail too
        kubernetes_validate.validate(doc, kube_version, strict=True)


def test_schema_validation_is_not_vacuous(default: list[Manifest]) -> None:
    deployment = json.loads(json.dumps(one(default, "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFileSystem"
    ] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[0], strict=True)


def test_crds_are_structurally_sound(full: list[Manifest]) -> None:
    # No schemas for the Prometheus Operator CRDs ship offline: check what matters here.
    service = one(full, "Service")
    monitor = one(full, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"]
    assert "http" in port_names
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]

    rule = one(full, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    for group in rule["spec"]["groups"]:
        assert set(group) <= {"name", "rules", "interval"}
        for r in group["rules"]:
            assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", r["alert"])
            assert r["labels"]["severity"] == "critical"
            assert r["labels"]["team"] == "data-platform"
            assert "for" not in r or re.fullmatch(r"\d+[smhd]", r["for"])


# --- what zendesk-cdc needs from its pod ---------------------------------------------


def test_one_replica_recreated_never_rolled(manifests: list[Manifest]) -> None:
    spec = one(manifests, "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_hardened_security_context(manifests: list[Manifest]) -> None:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    sc = container(manifests)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert one(manifests, "ServiceAccount")["automountServiceAccountToken"] is False


def test_probes_and_http_address_agree(manifests: list[Manifest]) -> None:
    c = container(manifests)
    port = c["ports"][0]
    address = env(manifests)["ZENDESK_CDC_HTTP_ADDRESS"]["value"]
    assert address == f"0.0.0.0:{port['containerPort']}"
    assert c["startupProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    service = one(manifests, "Service")["spec"]
    assert service["ports"][0]["targetPort"] == port["name"]
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert c["resources"]["limits"]["memory"]


def test_state_dir_is_a_writable_volume(default: list[Manifest], full: list[Manifest]) -> None:
    for docs, kind in ((default, "emptyDir"), (full, "persistentVolumeClaim")):
        c = container(docs)
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        state_dir = env(docs)["ZENDESK_CDC_STATE_DIR"]["value"]
        volumes = {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]
                   ["volumes"]}
        assert kind in volumes[mounts[state_dir]]
        # the root filesystem is read-only: /tmp must be a volume too
        assert "emptyDir" in volumes[mounts["/tmp"]]
    assert not [d for d in default if d["kind"] == "PersistentVolumeClaim"]
    pvc = one(full, "PersistentVolumeClaim")
    claim = one(full, "Deployment")["spec"]["template"]["spec"]["volumes"][0]
    assert claim["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert pvc["spec"]["storageClassName"] == "fast-ssd"


def test_pdb_allows_one_eviction_of_the_pod(manifests: list[Manifest]) -> None:
    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


# --- settings and credentials use the service's real names ----------------------------


def test_every_env_name_is_a_setting(manifests: list[Manifest]) -> None:
    names = set(env(manifests))
    assert {"ZENDESK_CDC_STATE_DIR", "ZENDESK_CDC_HTTP_ADDRESS"} <= names
    assert unknown_settings(names) == set()


def test_setting_check_catches_a_misspelt_setting() -> None:
    docs = render({"settings": {"ZENDESK_CDC_BOOTSTRAP_SERVER": "k:9092"}})
    assert unknown_settings(env(docs)) == {"ZENDESK_CDC_BOOTSTRAP_SERVER"}


def test_empty_settings_are_left_to_their_defaults(default: list[Manifest]) -> None:
    # an empty ZENDESK_CDC_ZENDESK_URL would be "" rather than unset for pydantic
    assert "ZENDESK_CDC_ZENDESK_URL" not in env(default)
    assert env(default)["ZENDESK_CDC_TOPIC"]["value"] == "zendesk.tickets"


def _secret_settings() -> set[str]:
    def is_secret(annotation: Any) -> bool:
        return SecretStr in getattr(annotation, "__args__", (annotation,))

    return {
        ENV_PREFIX + name.upper()
        for name, field in Settings.model_fields.items()
        if is_secret(field.annotation)
    }


def test_every_secret_setting_can_come_from_the_existing_secret() -> None:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    keys = {key: f"key-{key}" for key in values["existingSecret"]["keys"]}
    docs = render({"existingSecret": {"name": "creds", "keys": keys}})
    refs = {
        name: e["valueFrom"]["secretKeyRef"]
        for name, e in env(docs).items()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert _secret_settings() <= set(refs)
    assert unknown_settings(refs) == set()
    assert {r["name"] for r in refs.values()} == {"creds"}
    assert sorted(r["key"] for r in refs.values()) == sorted(keys.values())
    # no secret ever appears as a literal value
    assert not [n for n in _secret_settings() if "value" in env(docs).get(n, {})]


def test_full_values_take_credentials_from_the_secret(full: list[Manifest]) -> None:
    e = env(full)
    for name in ("ZENDESK_CDC_ZENDESK_OAUTH_REFRESH_TOKEN", "ZENDESK_CDC_SASL_PASSWORD"):
        ref = e[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == FULL_VALUES["existingSecret"]["name"]
    assert "ZENDESK_CDC_ZENDESK_API_TOKEN" not in e
    assert e["ZENDESK_CDC_REQUESTS_PER_MINUTE"]["value"] == "30"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"settings": {"ZENDESK_CDC_STATE_DIR": "/x"}}, "set by the chart"),
        ({"settings": {"BOOTSTRAP_SERVERS": "k:9092"}}, "ZENDESK_CDC_"),
        (
            {
                "settings": {"ZENDESK_CDC_SASL_PASSWORD": "oops"},
                "existingSecret": {"name": "s", "keys": {"saslPassword": "p"}},
            },
            "clashes",
        ),
        ({"existingSecret": {"keys": {"zendeskApiToken": "t"}}}, "existingSecret.name"),
        ({"existingSecret": {"name": "s", "keys": {"apiToken": "t"}}}, "not a known"),
    ],
)
def test_chart_refuses_settings_that_would_clash(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(values)


# --- monitoring: alerts and dashboard name only exported metrics ----------------------


def test_alert_rules_use_only_exported_metrics(full: list[Manifest]) -> None:
    rules = [r for g in one(full, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    exprs = [r["expr"] for r in rules]
    assert unknown_metrics(exprs) == {}
    wanted = {
        "zendesk_cdc_caught_up_timestamp_seconds",
        "zendesk_cdc_last_commit_timestamp_seconds",
        "zendesk_cdc_rate_limited_total",
        "zendesk_cdc_dead_lettered_total",
    }
    assert set().union(*(metric_names_in(e) for e in exprs)) == wanted
    # Prometheus Operator sets job to the Service name: the alerts watch this release only
    service = one(full, "Service")["metadata"]["name"]
    for expr in exprs:
        assert f'job="{service}"' in expr
        assert f'namespace="{NAMESPACE}"' in expr
    lag = next(r for r in rules if "caught_up" in r["expr"])
    assert lag["expr"].endswith(f"> {FULL_VALUES['prometheusRule']['cursorLagSeconds']}")


def test_monitoring_crds_are_opt_in(default: list[Manifest]) -> None:
    assert not [d for d in default if d["kind"] in CRD_KINDS]


def test_dashboard_configmap_ships_the_one_dashboard(manifests: list[Manifest]) -> None:
    cm = one(manifests, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["zendesk-cdc.json"]) == json.loads(DASHBOARD.read_text())


# --- values.yaml: every value documented, every value used ---------------------------

_KEY = re.compile(r"^(\s*)([A-Za-z_][\w./-]*):")


def undocumented(lines: list[str]) -> list[str]:
    """Keys of a values file whose preceding line is not a comment."""
    missing = []
    for i, line in enumerate(lines):
        if not (m := _KEY.match(line)):
            continue
        previous = lines[i - 1].strip() if i else ""
        if not previous.startswith("#"):
            missing.append(f"{i + 1}: {m.group(2)}")
    return missing


def test_every_value_is_documented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    assert undocumented(lines) == []
    assert undocumented(["# -- a", "a: 1", "b:", "  # -- c", "  c: 2"]) == ["3: b"]


def test_every_top_level_value_is_used_by_a_template() -> None:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    templates = "".join(p.read_text() for p in (CHART / "templates").iterdir())
    unused = [k for k in values if f".Values.{k}" not in templates]
    assert unused == []


def test_values_and_ci_values_name_only_real_settings() -> None:
    for path in (CHART / "values.yaml", CHART / "ci" / "full-values.yaml"):
        names = env_names_in(path.read_text())
        assert names, path
        assert unknown_settings(names) == set(), path



@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_rendered_environment_loads_as_valid_settings(
    values: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # names are not enough: "30" must be a valid requests_per_minute, the JSON must parse
    docs = render(VALUE_SETS[values])
    literal = {n: e["value"] for n, e in env(docs).items() if "value" in e}
    literal.setdefault("ZENDESK_CDC_ZENDESK_URL", "https://acme.zendesk.com")
    settings = load_from_env(monkeypatch, literal)
    assert str(settings.state_dir) == literal["ZENDESK_CDC_STATE_DIR"]
    if values == "full":
        assert settings.kafka_extra == {"linger.ms": "50"}
        assert settings.requests_per_minute == 30
        assert settings.create_topics is False


def test_deploy_readme_names_real_settings_and_secret_keys() -> None:
    text = (ROOT / "deploy" / "README-deploy.md").read_text()
    assert unknown_settings(env_names_in(text)) == set()
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    used = set(re.findall(r"existingSecret\.keys\.(\w+)=", text))
    assert used
    assert used <= set(values["existingSecret"]["keys"])
