"""The official kubernetes Python client against the sandbox: reads, writes, errors, TLS, watch."""
from __future__ import annotations

import base64
import json
import ssl
import urllib.request

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from sandbox_harness import start_sandbox, wait_until

from okera_auth.sandbox.kubelet import is_ready
from okera_auth.sandbox.resources import DEPLOYMENTS, PODS
from okera_auth.sandbox.pki import generate_certificates


def _api(sandbox, context=None) -> client.ApiClient:
    return config.new_client_from_config(config_file=sandbox.kubeconfig, context=context)


def _client_with_token(sandbox, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = sandbox.url
    configuration.ssl_ca_cert = sandbox.state.ca_cert
    configuration.api_key = {"authorization": "Bearer " + token}
    return client.ApiClient(configuration)


def _status(error: ApiException) -> dict:
    return json.loads(error.body)


def test_secret_holds_the_system_token_base64(sandbox):
    secret = client.CoreV1Api(_api(sandbox)).read_namespaced_secret("secrets", "default")
    token = base64.b64decode(secret.data["SYSTEM_TOKEN_0"]).decode("ascii")
    assert token.count(".") == 2
    assert secret.metadata.resource_version and secret.metadata.uid and secret.metadata.creation_timestamp


def test_patch_with_stale_resource_version_is_a_409_conflict(sandbox):
    core = client.CoreV1Api(_api(sandbox))
    first = core.read_namespaced_secret("secrets", "default")
    updated = core.patch_namespaced_secret("secrets", "default", {
        "metadata": {"resourceVersion": first.metadata.resource_version},
        "data": {"EXTRA": base64.b64encode(b"one").decode()}})
    assert int(updated.metadata.resource_version) > int(first.metadata.resource_version)
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_secret("secrets", "default", {
            "metadata": {"resourceVersion": first.metadata.resource_version},
            "data": {"EXTRA": base64.b64encode(b"two").decode()}})
    assert raised.value.status == 409
    assert _status(raised.value)["reason"] == "Conflict"
    stored = core.read_namespaced_secret("secrets", "default")
    assert base64.b64decode(stored.data["EXTRA"]) == b"one"


def test_replace_with_stale_resource_version_is_a_409_conflict(sandbox):
    core = client.CoreV1Api(_api(sandbox))
    secret = core.read_namespaced_secret("secrets", "default")
    stale = secret.metadata.resource_version
    core.patch_namespaced_secret("secrets", "default", {"metadata": {"annotations": {"touched": "yes"}}})
    secret.metadata.resource_version = stale
    with pytest.raises(ApiException) as raised:
        core.replace_namespaced_secret("secrets", "default", secret)
    assert raised.value.status == 409


def test_json_patch_and_merge_patch_of_a_secret(sandbox):
    core = client.CoreV1Api(_api(sandbox))
    core.patch_namespaced_secret("secrets", "default", [
        {"op": "add", "path": "/data/SYSTEM_TOKEN_1", "value": base64.b64encode(b"x.y.z").decode()}])
    core.patch_namespaced_secret("secrets", "default", {"data": {"SYSTEM_TOKEN_1": None}},
                                 _content_type="application/merge-patch+json")
    data = core.read_namespaced_secret("secrets", "default").data
    assert "SYSTEM_TOKEN_1" not in data and "SYSTEM_TOKEN_0" in data


def test_errors_are_status_objects_with_the_real_reasons(sandbox):
    core = client.CoreV1Api(_api(sandbox))
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_secret("nope", "default")
    assert (missing.value.status, _status(missing.value)["reason"]) == (404, "NotFound")
    assert _status(missing.value)["message"] == 'secrets "nope" not found'
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_secret("default", {"metadata": {"name": "secrets"}})
    assert (exists.value.status, _status(exists.value)["reason"]) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as bad_name:
        core.create_namespaced_secret("default", {"metadata": {"name": "Bad_Name"}})
    assert (bad_name.value.status, _status(bad_name.value)["reason"]) == (422, "Invalid")
    with pytest.raises(ApiException) as bad_data:
        core.create_namespaced_secret("default", {"metadata": {"name": "b"}, "data": {"k": "%%%"}})
    assert (bad_data.value.status, _status(bad_data.value)["reason"]) == (400, "BadRequest")
    with pytest.raises(ApiException) as no_namespace:
        core.create_namespaced_secret("elsewhere", {"metadata": {"name": "s"}})
    assert _status(no_namespace.value)["message"] == 'namespaces "elsewhere" not found'


def test_wrong_or_missing_token_is_401(sandbox):
    core = client.CoreV1Api(_client_with_token(sandbox, "not-the-token"))
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_secret("secrets", "default")
    assert (raised.value.status, _status(raised.value)["reason"]) == (401, "Unauthorized")
    context = ssl.create_default_context(cafile=sandbox.state.ca_cert)
    request = urllib.request.Request(sandbox.url + "/api/v1/namespaces/default/secrets")
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(request, context=context)
    assert anonymous.value.code == 401


def test_read_only_token_reads_but_gets_403_on_writes(sandbox):
    core = client.CoreV1Api(_api(sandbox, context="okera-sandbox-readonly"))
    assert core.read_namespaced_secret("secrets", "default").data["SYSTEM_TOKEN_0"]
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_secret("secrets", "default", {"metadata": {"labels": {"a": "b"}}})
    status = _status(raised.value)
    assert (raised.value.status, status["reason"]) == (403, "Forbidden")
    assert 'User "okera-sandbox-reader" cannot patch resource "secrets"' in status["message"]
    apps = client.AppsV1Api(_api(sandbox, context="okera-sandbox-readonly"))
    with pytest.raises(ApiException) as restart:
        apps.patch_namespaced_deployment("cerebro-planner", "default", {"spec": {"replicas": 3}})
    assert restart.value.status == 403


def test_list_pods_by_label_selector(ready_sandbox):
    core = client.CoreV1Api(_api(ready_sandbox))
    workers = core.list_namespaced_pod("default", label_selector="app=cerebro-worker")
    assert sorted(pod.metadata.name for pod in workers.items) == ["cerebro-worker-0", "cerebro-worker-1"]
    okera = core.list_namespaced_pod("default", label_selector="app.kubernetes.io/part-of=okera,"
                                                               "app.kubernetes.io/component in (planner)")
    assert [pod.metadata.labels["app"] for pod in okera.items] == ["cerebro-planner"]
    assert all(pod.metadata.owner_references[0].kind == "StatefulSet" for pod in workers.items)
    with pytest.raises(ApiException) as raised:
        core.list_namespaced_pod("default", field_selector="spec.unknown=1")
    assert raised.value.status == 400


def test_strategic_merge_patch_of_template_annotation_rolls_the_pods(ready_sandbox):
    apps = client.AppsV1Api(_api(ready_sandbox))
    core = client.CoreV1Api(_api(ready_sandbox))
    before = apps.read_namespaced_deployment("cdas-rest-server", "default")
    old_pods = {pod.metadata.name for pod in core.list_namespaced_pod(
        "default", label_selector="app=cdas-rest-server").items}
    patched = apps.patch_namespaced_deployment("cdas-rest-server", "default", {"spec": {"template": {
        "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})
    assert patched.metadata.generation == before.metadata.generation + 1
    assert patched.spec.template.spec.containers[0].env == before.spec.template.spec.containers[0].env

    def rolled():
        deployment = apps.read_namespaced_deployment("cdas-rest-server", "default")
        status = deployment.status
        return (status.observed_generation == deployment.metadata.generation
                and status.updated_replicas == status.ready_replicas == status.available_replicas == 2
                and status.replicas == 2 and not status.unavailable_replicas)
    wait_until(rolled, what="the rollout")
    new_pods = core.list_namespaced_pod("default", label_selector="app=cdas-rest-server").items
    assert len(new_pods) == 2 and not old_pods & {pod.metadata.name for pod in new_pods}
    assert all(pod.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == "2026-01-01T00:00:00Z"
               for pod in new_pods)


def test_strategic_merge_of_env_by_name_keeps_other_variables(sandbox):
    apps = client.AppsV1Api(_api(sandbox))
    apps.patch_namespaced_stateful_set("cerebro-worker", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "worker", "env": [{"name": "EXTRA", "value": "1"}]}]}}}})
    env = apps.read_namespaced_stateful_set("cerebro-worker", "default").spec.template.spec.containers[0].env
    assert [variable.name for variable in env] == ["SYSTEM_TOKEN_0", "JWT_PUBLIC_KEY", "JWT_ALGORITHM",
                                                   "CATALOG_ADMINS", "EXTRA"]


def test_daemonset_restart_replaces_its_pod(sandbox):
    apps = client.AppsV1Api(_api(sandbox))
    core = client.CoreV1Api(_api(sandbox))
    labels = {"app": "agent"}
    apps.create_namespaced_daemon_set("default", {"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "containers": [{"name": "agent", "image": "busybox:1"}]}}}})
    first = wait_until(lambda: [pod for pod in core.list_namespaced_pod("default", label_selector="app=agent").items
                                if pod.status.container_statuses and pod.status.container_statuses[0].ready],
                       what="the daemonset's pod")
    apps.patch_namespaced_daemon_set("agent", "default", {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}})

    def replaced():
        status = apps.read_namespaced_daemon_set("agent", "default").status
        pods = core.list_namespaced_pod("default", label_selector="app=agent").items
        return (status.updated_number_scheduled == status.number_available == 1
                and [pod.metadata.name for pod in pods] != [first[0].metadata.name])
    wait_until(replaced, what="the daemonset's new pod")


def test_deleting_a_deployment_deletes_its_pods(ready_sandbox):
    apps = client.AppsV1Api(_api(ready_sandbox))
    core = client.CoreV1Api(_api(ready_sandbox))
    answer = apps.delete_namespaced_deployment("cerebro-planner", "default")
    # This client version hands the Status back as a dict.
    assert (answer["status"] if isinstance(answer, dict) else answer.status) == "Success"
    wait_until(lambda: not core.list_namespaced_pod("default", label_selector="app=cerebro-planner").items,
               what="the planner's pods to go")


def test_dry_run_changes_nothing(sandbox):
    core = client.CoreV1Api(_api(sandbox))
    before = core.read_namespaced_secret("secrets", "default")
    answer = core.patch_namespaced_secret("secrets", "default", {"data": {"X": "eA=="}}, dry_run="All")
    assert answer.data["X"] == "eA=="
    after = core.read_namespaced_secret("secrets", "default")
    assert "X" not in after.data and after.metadata.resource_version == before.metadata.resource_version


def test_watch_from_a_list_sees_a_pod_replaced(ready_sandbox):
    core = client.CoreV1Api(_api(ready_sandbox))
    listed = core.list_namespaced_pod("default", label_selector="app=cerebro-planner")
    old = listed.items[0].metadata.name
    core.delete_namespaced_pod(old, "default")
    seen = []
    stream = watch.Watch()
    for event in stream.stream(core.list_namespaced_pod, "default", label_selector="app=cerebro-planner",
                               resource_version=listed.metadata.resource_version, timeout_seconds=10):
        pod = event["object"]
        seen.append((event["type"], pod.metadata.name == old))
        if pod.metadata.name != old and pod.status.container_statuses and pod.status.container_statuses[0].ready:
            stream.stop()
    assert seen[0] == ("DELETED", True)
    assert ("ADDED", False) in seen and seen[-1] == ("MODIFIED", False)


def test_discovery_documents(sandbox):
    api = _api(sandbox)
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = client.ApisApi(api).get_api_versions().groups
    assert [group.name for group in groups] == ["apps", "batch", "rbac.authorization.k8s.io"]
    resources = {resource.name for resource in client.AppsV1Api(api).get_api_resources().resources}
    assert {"deployments", "statefulsets", "daemonsets", "deployments/scale"} <= resources
    assert client.VersionApi(api).get_code().major == "1"


def test_tls_client_refuses_a_server_it_cannot_verify(sandbox, tmp_path):
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(generate_certificates()[0])
    configuration = client.Configuration()
    configuration.host = sandbox.url
    configuration.ssl_ca_cert = str(other_ca)
    configuration.api_key = {"authorization": "Bearer " + sandbox.settings.admin_token}
    configuration.retries = 0
    # Depending on the client version the failure surfaces as ApiException or urllib3's error.
    with pytest.raises((ApiException, urllib3.exceptions.HTTPError)) as raised:
        client.CoreV1Api(client.ApiClient(configuration)).read_namespaced_secret("secrets", "default")
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)


def test_state_survives_a_restart(sandbox):
    core = client.CoreV1Api(_api(sandbox))
    core.patch_namespaced_secret("secrets", "default", {"metadata": {"labels": {"kept": "yes"}}})
    revision = core.read_namespaced_secret("secrets", "default").metadata.resource_version
    sandbox.server.stop()
    restarted = start_sandbox(sandbox.state)
    try:
        again = client.CoreV1Api(_api(restarted)).read_namespaced_secret("secrets", "default")
        assert again.metadata.labels["kept"] == "yes"
        assert again.metadata.resource_version == revision
        state = json.loads(open(sandbox.state.cluster).read())
        assert int(state["resourceVersion"]) >= int(revision)
    finally:
        restarted.server.stop()


def test_pods_become_ready_with_the_initial_token(ready_sandbox):
    pods = ready_sandbox.store.objects(PODS)
    assert len(pods) == 5 and all(is_ready(pod) for pod in pods)
    deployment = ready_sandbox.store.find(DEPLOYMENTS, "default", "cdas-rest-server")
    wait_until(lambda: (ready_sandbox.store.find(DEPLOYMENTS, "default", "cdas-rest-server")
                        .get("status", {}).get("availableReplicas")) == 2, what="available replicas")
    assert deployment["metadata"]["generation"] == 1
