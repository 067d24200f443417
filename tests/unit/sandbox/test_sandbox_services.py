"""Services in the sandbox's store: defaults allocated once, LoadBalancer ingress, the REST port written in."""
from __future__ import annotations

import pytest

from okera_auth.sandbox.controllers import Controllers
from okera_auth.sandbox.errors import ApiError
from okera_auth.sandbox.okera import REST_SERVICE, rest_service_object
from okera_auth.sandbox.okera_rest import RestApi, publish_port
from okera_auth.sandbox.resources import NAMESPACES, SERVICE_RESOURCE
from okera_auth.sandbox.store import Store

MERGE = "application/merge-patch+json"


@pytest.fixture
def store() -> Store:
    store = Store()
    store.create(NAMESPACES, "", {"metadata": {"name": "default"}})
    store.create(SERVICE_RESOURCE, "default", rest_service_object("default"))
    return store


def test_cluster_ip_and_node_port_are_allocated_once_and_kept(store):
    created = store.get(SERVICE_RESOURCE, "default", REST_SERVICE)
    port = created["spec"]["ports"][0]
    assert created["spec"]["clusterIP"].startswith("10.96.") and 30000 <= port["nodePort"] <= 32767
    assert port["targetPort"] == 8083 and port["protocol"] == "TCP"
    assert publish_port(store, "default", 41234)
    changed = store.get(SERVICE_RESOURCE, "default", REST_SERVICE)
    assert changed["spec"]["ports"][0]["port"] == 41234
    assert changed["spec"]["ports"][0]["nodePort"] == port["nodePort"]
    assert changed["spec"]["clusterIP"] == created["spec"]["clusterIP"]


def test_cluster_ip_is_immutable_and_ports_are_checked(store):
    with pytest.raises(ApiError) as failed:
        store.patch(SERVICE_RESOURCE, "default", REST_SERVICE, MERGE, {"spec": {"clusterIP": "10.0.0.9"}})
    assert failed.value.code == 422 and "immutable" in failed.value.message
    with pytest.raises(ApiError) as failed:
        store.create(SERVICE_RESOURCE, "default", {"metadata": {"name": "bad"}, "spec": {"ports": [{"port": 0}]}})
    assert failed.value.code == 422 and "spec.ports[0].port" in failed.value.message


def test_only_load_balancers_get_the_loopback_ingress(store):
    store.create(SERVICE_RESOURCE, "default", {"metadata": {"name": "inside"}, "spec": {"ports": [{"port": 80}]}})
    Controllers(store).sync(0.0)
    balanced = store.get(SERVICE_RESOURCE, "default", REST_SERVICE)["status"]["loadBalancer"]
    assert balanced["ingress"][0]["ip"] == "127.0.0.1"
    assert store.get(SERVICE_RESOURCE, "default", "inside")["status"] == {"loadBalancer": {}}


def test_load_balancers_get_the_address_they_are_given(store):
    Controllers(store, "10.89.0.2").sync(0.0)
    balanced = store.get(SERVICE_RESOURCE, "default", REST_SERVICE)["status"]["loadBalancer"]
    assert balanced == {"ingress": [{"ip": "10.89.0.2", "ipMode": "VIP"}]}


def test_publishing_without_the_service_says_so(store):
    store.delete(SERVICE_RESOURCE, "default", REST_SERVICE)
    assert publish_port(store, "default", 41234) is False


def test_the_rest_api_is_unavailable_without_ready_pods(store):
    answer = RestApi(store, "default").answer("GET", "/api/info")
    assert answer.code == 503 and "no cdas-rest-server pod is ready (0 pod(s))" in answer.body["message"]
    store.delete(SERVICE_RESOURCE, "default", REST_SERVICE)
    assert "does not exist" in RestApi(store, "default").answer("GET", "/api/info").body["message"]
