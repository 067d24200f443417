"""API semantics checked over raw HTTP: watch resumption and expiry, collections, cascading, strategies."""
from __future__ import annotations

import http.client
import json
import ssl
import time
from typing import List, Optional

from sandbox_harness import wait_until

from okera_auth.sandbox import store as store_module
from okera_auth.sandbox.kubelet import is_ready
from okera_auth.sandbox.resources import CONFIGMAPS, DEPLOYMENTS, PODS, REPLICASETS, STATEFULSETS


def _request(sandbox, method: str, path: str, body=None, content_type: str = "application/json",
             token: Optional[str] = None):
    context = ssl.create_default_context(cafile=sandbox.state.ca_cert)
    connection = http.client.HTTPSConnection("127.0.0.1", sandbox.server.port, context=context, timeout=20)
    headers = {"Authorization": "Bearer " + (token or sandbox.settings.admin_token),
               "Content-Type": content_type}
    connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    return connection, connection.getresponse()


def _json(sandbox, method: str, path: str, body=None, **options):
    connection, response = _request(sandbox, method, path, body, **options)
    try:
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _watch_events(sandbox, path: str) -> List[dict]:
    connection, response = _request(sandbox, "GET", path)
    try:
        assert response.status == 200
        return [json.loads(line) for line in response.read().decode().splitlines() if line]
    finally:
        connection.close()


def test_watch_resumes_after_a_resource_version(sandbox):
    status, secrets = _json(sandbox, "GET", "/api/v1/namespaces/default/secrets")
    since = secrets["metadata"]["resourceVersion"]
    _json(sandbox, "PATCH", "/api/v1/namespaces/default/secrets/secrets",
          {"metadata": {"labels": {"step": "1"}}}, content_type="application/merge-patch+json")
    _json(sandbox, "DELETE", "/api/v1/namespaces/default/secrets/okera-config")
    events = _watch_events(sandbox, "/api/v1/namespaces/default/secrets?watch=true&timeoutSeconds=1"
                                    "&resourceVersion=" + since)
    assert [(event["type"], event["object"]["metadata"]["name"]) for event in events] == [
        ("MODIFIED", "secrets"), ("DELETED", "okera-config")]
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(
        events[0]["object"]["metadata"]["resourceVersion"]) > int(since)


def test_watch_from_now_starts_with_what_exists_and_filters_by_name(sandbox):
    events = _watch_events(sandbox, "/apis/apps/v1/namespaces/default/deployments?watch=1&timeoutSeconds=1"
                                    "&fieldSelector=metadata.name%3Dcerebro-planner")
    assert events and all(event["object"]["metadata"]["name"] == "cerebro-planner" for event in events)
    assert events[0]["type"] == "ADDED"


def test_watch_from_a_forgotten_resource_version_is_410_expired(sandbox):
    configmaps = _json(sandbox, "GET", "/api/v1/namespaces/default/configmaps")[1]
    since = int(configmaps["metadata"]["resourceVersion"])
    with sandbox.store.batch():
        for number in range(store_module.EVENT_HISTORY + 5):
            sandbox.store.create(CONFIGMAPS, "default", {"metadata": {"name": "c%d" % number}})
    events = _watch_events(sandbox, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=%d"
                                    % since)
    assert [event["type"] for event in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


def test_delete_collection_by_label(sandbox):
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        sandbox.store.create(CONFIGMAPS, "default", {"metadata": {"name": name, "labels": {"tier": tier}}})
    status, answer = _json(sandbox, "DELETE", "/api/v1/namespaces/default/configmaps?labelSelector=tier%3Dx")
    assert status == 200 and sorted(item["metadata"]["name"] for item in answer["items"]) == ["a", "b"]
    assert [obj["metadata"]["name"] for obj in sandbox.store.objects(CONFIGMAPS)] == ["c"]


def test_orphan_propagation_keeps_the_replicaset_and_its_pods(ready_sandbox):
    status = _json(ready_sandbox, "DELETE", "/apis/apps/v1/namespaces/default/deployments/cerebro-planner",
                   {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"})[0]
    assert status == 200
    time.sleep(0.5)
    replica_sets = [rs for rs in ready_sandbox.store.objects(REPLICASETS)
                    if rs["metadata"]["labels"]["app"] == "cerebro-planner"]
    assert len(replica_sets) == 1 and not replica_sets[0]["metadata"].get("ownerReferences")
    planners = [pod for pod in ready_sandbox.store.objects(PODS) if pod["metadata"]["labels"]["app"] == "cerebro-planner"]
    assert len(planners) == 1 and is_ready(planners[0])
    assert planners[0]["metadata"]["ownerReferences"][0]["uid"] == replica_sets[0]["metadata"]["uid"]


def test_deployment_pods_belong_to_a_replicaset_with_a_revision(ready_sandbox):
    ready_sandbox.store.patch(DEPLOYMENTS, "default", "cerebro-planner", "application/strategic-merge-patch+json",
                              {"spec": {"template": {"metadata": {"annotations": {"r": "1"}}}}})

    def two_revisions():
        replica_sets = sorted((rs for rs in ready_sandbox.store.objects(REPLICASETS)
                               if rs["metadata"]["labels"]["app"] == "cerebro-planner"),
                              key=lambda rs: rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
        sizes = [(rs["spec"]["replicas"], rs["status"].get("availableReplicas", 0)) for rs in replica_sets]
        return sizes == [(0, 0), (1, 1)] and replica_sets
    old, new = wait_until(two_revisions, what="the new ReplicaSet to take over")
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    deployment = ready_sandbox.store.find(DEPLOYMENTS, "default", "cerebro-planner")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert new["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"]


def test_delete_precondition_on_a_stale_resource_version_is_409(sandbox):
    status, answer = _json(sandbox, "DELETE", "/api/v1/namespaces/default/secrets/secrets",
                           {"preconditions": {"resourceVersion": "1"}})
    assert status == 409 and answer["reason"] == "Conflict"


def test_unsupported_patch_type_and_protobuf_are_415(sandbox):
    status, answer = _json(sandbox, "PATCH", "/api/v1/namespaces/default/secrets/secrets", {"a": 1},
                           content_type="text/plain")
    assert status == 415 and answer["reason"] == "UnsupportedMediaType"
    status = _json(sandbox, "POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "p"}},
                   content_type="application/vnd.kubernetes.protobuf")[0]
    assert status == 415


def test_unknown_paths_and_methods(sandbox):
    assert _json(sandbox, "GET", "/api/v1/nodes")[0] == 404
    assert _json(sandbox, "GET", "/api/v1/namespaces/default/pods/x/log")[0] == 404
    assert _json(sandbox, "PUT", "/api/v1/namespaces/default/secrets")[0] == 405
    assert _json(sandbox, "GET", "/version", token="wrong")[0] == 200
    assert _json(sandbox, "GET", "/api", token="wrong")[0] == 401


def test_updates_that_change_nothing_keep_the_resource_version(sandbox):
    secret = _json(sandbox, "GET", "/api/v1/namespaces/default/secrets/secrets")[1]
    status, again = _json(sandbox, "PUT", "/api/v1/namespaces/default/secrets/secrets", secret)
    assert status == 200 and again["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]


def test_workload_selector_must_match_template_and_is_immutable(sandbox):
    body = {"metadata": {"name": "bad"}, "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {
        "metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    status, answer = _json(sandbox, "POST", "/apis/apps/v1/namespaces/default/deployments", body)
    assert status == 422 and answer["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    status, answer = _json(sandbox, "PATCH", "/apis/apps/v1/namespaces/default/deployments/cerebro-planner",
                           {"spec": {"selector": {"matchLabels": {"app": "other"}}}},
                           content_type="application/merge-patch+json")
    assert status == 422


def test_recreate_strategy_replaces_all_pods_at_once(ready_sandbox):
    ready_sandbox.store.patch(DEPLOYMENTS, "default", "cdas-rest-server", "application/merge-patch+json",
                              {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}})
    before = {pod["metadata"]["uid"] for pod in ready_sandbox.store.objects(PODS)
              if pod["metadata"]["labels"]["app"] == "cdas-rest-server"}
    ready_sandbox.store.patch(DEPLOYMENTS, "default", "cdas-rest-server", "application/strategic-merge-patch+json",
                              {"spec": {"template": {"metadata": {"annotations": {"r": "1"}}}}})

    def replaced():
        pods = [pod for pod in ready_sandbox.store.objects(PODS)
                if pod["metadata"]["labels"]["app"] == "cdas-rest-server"]
        return len(pods) == 2 and all(is_ready(pod) for pod in pods) and not before & {
            pod["metadata"]["uid"] for pod in pods}
    wait_until(replaced, what="two new rest servers")


def test_statefulset_partition_keeps_lower_ordinals(ready_sandbox):
    ready_sandbox.store.patch(STATEFULSETS, "default", "cerebro-worker", "application/merge-patch+json", {
        "spec": {"updateStrategy": {"rollingUpdate": {"partition": 1}},
                 "template": {"metadata": {"annotations": {"r": "1"}}}}})
    worker_0 = ready_sandbox.store.find(PODS, "default", "cerebro-worker-0")["metadata"]["uid"]

    def worker_1_updated():
        pod = ready_sandbox.store.find(PODS, "default", "cerebro-worker-1")
        return pod and pod["metadata"].get("annotations", {}).get("r") == "1" and is_ready(pod)
    wait_until(worker_1_updated, what="cerebro-worker-1 to be replaced")
    time.sleep(0.3)
    assert ready_sandbox.store.find(PODS, "default", "cerebro-worker-0")["metadata"]["uid"] == worker_0
    status = ready_sandbox.store.find(STATEFULSETS, "default", "cerebro-worker")["status"]
    assert status["updatedReplicas"] == 1 and status["currentRevision"] != status["updateRevision"]


def test_openapi_v3_tells_kubectl_that_the_server_validates(sandbox):
    status, root = _json(sandbox, "GET", "/openapi/v3")
    assert status == 200 and set(root["paths"]) == {"api/v1", "apis/apps/v1", "apis/batch/v1",
                                                    "apis/rbac.authorization.k8s.io/v1"}
    status, document = _json(sandbox, "GET", root["paths"]["apis/apps/v1"]["serverRelativeURL"])
    patch = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert "fieldValidation" in [parameter["name"] for parameter in patch["parameters"]]


def test_label_selector_watch_sees_objects_enter_and_leave(sandbox):
    configmaps = _json(sandbox, "GET", "/api/v1/namespaces/default/configmaps")[1]
    since = configmaps["metadata"]["resourceVersion"]
    sandbox.store.create(CONFIGMAPS, "default", {"metadata": {"name": "m", "labels": {"tier": "x"}}})
    for tier in ("y", "x", "x"):
        sandbox.store.patch(CONFIGMAPS, "default", "m", "application/merge-patch+json",
                            {"metadata": {"labels": {"tier": tier}, "annotations": {"n": str(time.time())}}})
    events = _watch_events(sandbox, "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1"
                                    "&labelSelector=tier%3Dx&resourceVersion=" + since)
    assert [event["type"] for event in events] == ["ADDED", "DELETED", "ADDED", "MODIFIED"]


def test_lists_are_paged_with_limit_and_continue(sandbox):
    with sandbox.store.batch():
        for number in range(7):
            sandbox.store.create(CONFIGMAPS, "default", {"metadata": {"name": "page-%d" % number}})
    names, token, pages = [], None, 0
    while True:
        path = "/api/v1/namespaces/default/configmaps?limit=3" + ("&continue=" + token if token else "")
        status, answer = _json(sandbox, "GET", path)
        assert status == 200
        names += [item["metadata"]["name"] for item in answer["items"]]
        pages += 1
        token = answer["metadata"].get("continue")
        if not token:
            break
        assert answer["metadata"]["remainingItemCount"] == 7 - len(names)
    assert names == ["page-%d" % number for number in range(7)] and pages == 3
    assert _json(sandbox, "GET", "/api/v1/namespaces/default/configmaps?limit=3&continue=%%%")[0] == 400
