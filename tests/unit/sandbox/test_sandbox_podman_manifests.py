"""What the sandbox's --podman hands to `podman kube play`: no podman here, only the manifests.

The containers themselves run in tests/containers/test_sandbox_podman.py.
"""
from __future__ import annotations

import base64

import pytest

from okera_auth.sandbox.errors import SandboxError
from okera_auth.sandbox.kubelet import MissingReference
from okera_auth.sandbox.podman import EmptyDir, for_podman, is_okera_pod, pod_documents, quantity_bytes, secret_names
from okera_auth.sandbox.resources import CONFIGMAPS, NAMESPACES, PODS, SECRETS
from okera_auth.sandbox.store import Store


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def store() -> Store:
    store = Store()
    store.create(NAMESPACES, "", {"metadata": {"name": "default"}})
    store.create(SECRETS, "default", {"metadata": {"name": "key"}, "data": {"private.pem": _b64("PEM TEXT"), "USER": _b64("ann")}})
    store.create(CONFIGMAPS, "default", {"metadata": {"name": "settings"}, "data": {"MODE": "batch"}})
    return store


def _pod(store: Store, name: str = "app", **spec) -> dict:
    body = {"metadata": {"name": name, "labels": {"app": "app"}},
            "spec": dict({"containers": [{"name": "main", "image": "example:1",
                                          "env": [{"name": "USER", "valueFrom": {"secretKeyRef": {"name": "key", "key": "USER"}}}],
                                          "envFrom": [{"configMapRef": {"name": "settings"}}]}]}, **spec)}
    return store.create(PODS, "default", body)


def test_environment_is_resolved_and_volumes_get_their_objects_under_pod_names(store):
    pod = _pod(store, volumes=[{"name": "key", "secret": {"secretName": "key", "defaultMode": 256}},
                               {"name": "settings", "configMap": {"name": "settings"}}])
    documents = pod_documents(store, pod)
    name = "default-app-%s" % pod["metadata"]["uid"][:8]
    secret, config_map, played = documents
    assert secret == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name + "-key"}, "type": "Opaque",
                      "data": {"private.pem": _b64("PEM TEXT"), "USER": _b64("ann")}}
    assert config_map["metadata"]["name"] == name + "-settings" and config_map["data"] == {"MODE": "batch"}
    assert played["metadata"]["name"] == name
    assert played["metadata"]["labels"]["okera.auth/sandbox-pod"] == pod["metadata"]["uid"]
    (container,) = played["spec"]["containers"]
    assert sorted(container["env"], key=lambda entry: entry["name"]) == [
        {"name": "MODE", "value": "batch"}, {"name": "USER", "value": "ann"}]
    assert "envFrom" not in container and container["imagePullPolicy"] == "Never"
    assert played["spec"]["restartPolicy"] == "Never"  # the sandbox restarts, with its back-off
    assert played["spec"]["volumes"][0]["secret"]["secretName"] == name + "-key"
    assert secret_names([played]) == [name + "-key"]


def test_long_pod_and_secret_names_are_shortened_to_what_podman_takes(store):
    store.create(SECRETS, "default", {"metadata": {"name": "token-client-authserver-key"}, "data": {"k": _b64("v")}})
    pods = [_pod(store, "token-client-7d9f8c6b5d-x2x4%s" % letter,
                 volumes=[{"name": "key", "secret": {"secretName": "token-client-authserver-key"}}]) for letter in "qr"]
    names = [pod_documents(store, pod)[0]["metadata"]["name"] for pod in pods]
    assert all(len(name) <= 64 and name[0].isalnum() and name[-1].isalnum() for name in names)
    assert names[0] != names[1] and all(name.startswith("default-token-client-7d9f8c6b5d-x2x4") for name in names)
    played = pod_documents(store, pods[0])[-1]
    assert played["spec"]["volumes"][0]["secret"]["secretName"] == names[0] and secret_names([played]) == [names[0]]


def test_missing_secret_is_a_config_error(store):
    pod = _pod(store, volumes=[{"name": "gone", "secret": {"secretName": "gone"}}])
    with pytest.raises(MissingReference, match='secret "gone" not found'):
        pod_documents(store, pod)
    optional = _pod(store, "other", volumes=[{"name": "gone", "secret": {"secretName": "gone", "optional": True}}])
    assert len(pod_documents(store, optional)) == 1


def test_for_podman_changes_only_what_podman_cannot_do():
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "annotations": {"short": "x", "long": "y" * 64}},
           "spec": {"securityContext": {"fsGroup": 2000},
                    "containers": [{"name": "main", "image": "example:1", "ports": [{"containerPort": 80}],
                                    "readinessProbe": {"exec": {"command": ["true"]}}}],
                    "volumes": [{"name": "tokens", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                                {"name": "scratch", "emptyDir": {}},
                                {"name": "key", "secret": {"secretName": "key"}}]}}
    adapted = for_podman([pod])
    (result,) = adapted.documents
    assert result["metadata"]["annotations"] == {"short": "x"}
    assert result["spec"]["securityContext"]["supplementalGroups"] == [2000]
    assert result["spec"]["containers"] == [{"name": "main", "image": "example:1"}]
    assert result["spec"]["volumes"] == [{"name": "tokens", "persistentVolumeClaim": {"claimName": "web-tokens"}},
                                         {"name": "scratch", "persistentVolumeClaim": {"claimName": "web-scratch"}},
                                         {"name": "key", "secret": {"secretName": "key", "optional": False}}]
    assert adapted.empty_dirs == [EmptyDir("web-tokens", 2000, 0o2777, 16 * 1024 * 1024),
                                  EmptyDir("web-scratch", 2000, 0o2777, None)]
    assert pod["spec"]["volumes"][0]["emptyDir"]  # the input is left as it was
    assert len(adapted.changes) == 7


def test_quantities_and_okera_pods():
    assert quantity_bytes("16Mi") == 16 * 1024 ** 2 and quantity_bytes("1G") == 10 ** 9 and quantity_bytes("512") == 512
    with pytest.raises(SandboxError):
        quantity_bytes("1.5Gi")
    assert is_okera_pod({"metadata": {"labels": {"app.kubernetes.io/part-of": "okera"}}})
    assert not is_okera_pod({"metadata": {"labels": {"app.kubernetes.io/part-of": "okera-tutorial"}}})
