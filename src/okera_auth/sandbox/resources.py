# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The resource types the sandbox serves, their discovery documents, defaults and validation."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from okera_auth.module_utils.errors import shown
from .errors import bad_request, invalid
from .selectors import selector_matcher

SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-okera-sandbox",
                  "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                  "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
                  "platform": "linux/amd64"}

READ_VERBS = ["get", "list", "watch"]
WRITE_VERBS = ["create", "delete", "deletecollection", "patch", "update"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: Tuple[str, ...] = ()
    categories: Tuple[str, ...] = ()
    has_status: bool = False  # status is written by controllers, not by object writes
    has_generation: bool = False

    @property
    def key(self) -> str:
        return "%s/%s" % (self.group, self.plural)

    @property
    def api_version(self) -> str:
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    def discovery(self) -> dict:
        entry = {"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
                 "kind": self.kind, "verbs": READ_VERBS + WRITE_VERBS}
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


RESOURCE_TYPES = (
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",), has_status=True),
    ResourceType("", "v1", "secrets", "secret", "Secret", True),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    # Nothing writes events here, but kubectl describe lists them.
    ResourceType("", "v1", "events", "event", "Event", True, ("ev",)),
    ResourceType("", "v1", "pods", "pod", "Pod", True, ("po",), ("all",), has_status=True),
    ResourceType("", "v1", "services", "service", "Service", True, ("svc",), ("all",), has_status=True),
    ResourceType("apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",), ("all",),
                 has_status=True, has_generation=True),
    ResourceType("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, ("rs",), ("all",),
                 has_status=True, has_generation=True),
    ResourceType("apps", "v1", "statefulsets", "statefulset", "StatefulSet", True, ("sts",), ("all",),
                 has_status=True, has_generation=True),
    ResourceType("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, ("ds",), ("all",),
                 has_status=True, has_generation=True),
    # Stored as given, nothing runs them: what the system token's rotation CronJob is made of.
    ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
    ResourceType("batch", "v1", "cronjobs", "cronjob", "CronJob", True, ("cj",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True),
)
BY_PATH: Dict[Tuple[str, str, str], ResourceType] = {
    (rtype.group, rtype.version, rtype.plural): rtype for rtype in RESOURCE_TYPES}
BY_KIND: Dict[str, ResourceType] = {rtype.kind: rtype for rtype in RESOURCE_TYPES}
GROUP_VERSIONS = (("", "v1"), ("apps", "v1"), ("batch", "v1"), ("rbac.authorization.k8s.io", "v1"))
NAMESPACES = BY_KIND["Namespace"]
PODS = BY_KIND["Pod"]
SECRETS = BY_KIND["Secret"]
CONFIGMAPS = BY_KIND["ConfigMap"]
DEPLOYMENTS = BY_KIND["Deployment"]
STATEFULSETS = BY_KIND["StatefulSet"]
DAEMONSETS = BY_KIND["DaemonSet"]
REPLICASETS = BY_KIND["ReplicaSet"]
SERVICE_RESOURCE = BY_KIND["Service"]  # okera.SERVICES are Okera's services (workloads)
WORKLOADS = (DEPLOYMENTS, STATEFULSETS, DAEMONSETS)


def resource_list(group: str, version: str) -> dict:
    """The APIResourceList of /api/v1 or /apis/<group>/<version>."""
    resources: List[dict] = []
    for rtype in RESOURCE_TYPES:
        if (rtype.group, rtype.version) != (group, version):
            continue
        resources.append(rtype.discovery())
        if rtype.kind == "Pod":
            resources.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                              "verbs": ["get"]})
        if rtype.has_status and rtype is not NAMESPACES:
            resources.append({"name": rtype.plural + "/status", "singularName": "", "namespaced": True,
                              "kind": rtype.kind, "verbs": ["get"]})
        if rtype.kind in ("Deployment", "StatefulSet"):
            resources.append({"name": rtype.plural + "/scale", "singularName": "", "namespaced": True,
                              "group": "autoscaling", "version": "v1", "kind": "Scale",
                              "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "%s/%s" % (group, version) if group else version, "resources": resources}


def api_group(group: str) -> dict:
    versions = [{"groupVersion": "%s/%s" % (group, version), "version": version}
                for known_group, version in GROUP_VERSIONS if known_group == group]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
            "preferredVersion": versions[0]}


def api_group_list() -> dict:
    groups = sorted({group for group, _version in GROUP_VERSIONS if group})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group(group) for group in groups]}


# ---- validation and defaults -------------------------------------------------------------------

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# Fields of a pod spec that may change after creation (the rest is immutable).
_MUTABLE_POD_FIELDS = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")
_IMMUTABLE_STATEFULSET_FIELDS = ("selector", "serviceName", "podManagementPolicy",
                                 "volumeClaimTemplates")


def _check_name(rtype: ResourceType, name: str) -> None:
    # Namespaces are DNS labels; the other kinds here are DNS subdomains.
    pattern = _LABEL if rtype is NAMESPACES else _SUBDOMAIN
    if not pattern.fullmatch(name) or len(name) > (63 if rtype is NAMESPACES else 253):
        raise invalid(rtype.kind, rtype.group, name, [(
            "metadata.name", "FieldValueInvalid",
            'Invalid value: "%s": a lowercase RFC 1123 %s must consist of lower case alphanumeric '
            "characters, '-' or '.', and must start and end with an alphanumeric character"
            % (name, "label" if rtype is NAMESPACES else "subdomain"))])


def _check_string_map(rtype: ResourceType, obj: dict, field: str) -> None:
    values = obj.get("metadata", {}).get(field)
    if values is None:
        return
    if not isinstance(values, dict) or not all(isinstance(value, str) for value in values.values()):
        raise bad_request("%s in version \"%s\" cannot be handled as a %s: metadata.%s must map "
                          "strings to strings" % (rtype.kind, rtype.version, rtype.kind, field))


def _required(rtype: ResourceType, name: str, field: str) -> None:
    raise invalid(rtype.kind, rtype.group, name, [(field, "FieldValueRequired", "Required value")])


def _default_pod_spec(rtype: ResourceType, name: str, spec: dict, field: str) -> None:
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        _required(rtype, name, field + ".containers")
    for number, container in enumerate(containers):
        for required in ("name", "image"):
            if not isinstance(container, dict) or not container.get(required):
                _required(rtype, name, "%s.containers[%d].%s" % (field, number, required))
        image = container["image"]
        tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
        container.setdefault("imagePullPolicy", "IfNotPresent" if tagged else "Always")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})


def _prepare_secret(rtype: ResourceType, obj: dict, old: Optional[dict]) -> None:
    name = obj["metadata"]["name"]
    obj.setdefault("type", "Opaque")
    data = obj.get("data") or {}
    string_data = obj.pop("stringData", None) or {}
    if not isinstance(data, dict) or not isinstance(string_data, dict):
        raise bad_request("Secret in version \"v1\" cannot be handled as a Secret: data and "
                          "stringData must be objects")
    for key, value in string_data.items():
        if not isinstance(value, str):
            raise bad_request("Secret in version \"v1\" cannot be handled as a Secret: "
                              "stringData[%s] must be a string" % key)
        data[key] = base64.b64encode(value.encode("utf-8")).decode("ascii")
    for key, value in data.items():
        if not _DATA_KEY.fullmatch(key):
            message = ("Invalid value: \"%s\": a valid config key must consist of alphanumeric "
                       "characters, '-', '_' or '.'" % key)
            raise invalid("Secret", "", name, [("data[%s]" % key, "FieldValueInvalid", message)])
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise bad_request("Secret in version \"v1\" cannot be handled as a Secret: illegal "
                              "base64 data in data[%s]" % key) from None
    if data or "data" in obj:
        obj["data"] = data
    if old is not None:
        if obj["type"] != old.get("type", "Opaque"):
            raise invalid("Secret", "", name, [("type", "FieldValueInvalid", "field is immutable")])
        if old.get("immutable") and (obj.get("data") != old.get("data") or not obj.get("immutable")):
            raise invalid("Secret", "", name, [
                ("data", "FieldForbidden", "field is immutable when `immutable` is set")])


def _prepare_configmap(rtype: ResourceType, obj: dict, old: Optional[dict]) -> None:
    data = obj.get("data") or {}
    if not isinstance(data, dict) or not all(isinstance(value, str) for value in data.values()):
        raise bad_request("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: data "
                          "must map strings to strings")


def _prepare_namespace(rtype: ResourceType, obj: dict, old: Optional[dict]) -> None:
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}


def _prepare_pod(rtype: ResourceType, obj: dict, old: Optional[dict]) -> None:
    name = obj["metadata"]["name"]
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        _required(rtype, name, "spec")
    if old is None:
        _default_pod_spec(rtype, name, spec, "spec")
        return
    old_spec, changed = old.get("spec", {}), dict(spec)
    # Only images (and a few scheduling fields) of a pod may change, as on a real server.
    changed["containers"] = [dict(container, image=None) for container in spec.get("containers", [])]
    before = dict(old_spec, containers=[dict(container, image=None)
                                        for container in old_spec.get("containers", [])])
    for field in _MUTABLE_POD_FIELDS + ("nodeName",):
        changed.pop(field, None)
        before.pop(field, None)
    if changed != before:
        raise invalid("Pod", "", name, [("spec", "FieldForbidden",
                                         "Forbidden: pod updates may not change fields other than "
                                         "`spec.containers[*].image`, `spec.activeDeadlineSeconds`, "
                                         "`spec.tolerations` and `spec.terminationGracePeriodSeconds`")])


def _prepare_workload(rtype: ResourceType, obj: dict, old: Optional[dict]) -> None:
    name = obj["metadata"]["name"]
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        _required(rtype, name, "spec")
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels")
                                              or selector.get("matchExpressions")):
        _required(rtype, name, "spec.selector")
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        _required(rtype, name, "spec.template.spec")
    labels = template.setdefault("metadata", {}).get("labels") or {}
    if not selector_matcher(selector)(labels):
        raise invalid(rtype.kind, rtype.group, name, [(
            "spec.template.metadata.labels", "FieldValueInvalid",
            "Invalid value: %s: `selector` does not match template `labels`" % shown(labels))])
    _default_pod_spec(rtype, name, template["spec"], "spec.template.spec")
    if rtype.kind != "ReplicaSet":
        spec.setdefault("revisionHistoryLimit", 10)
    if rtype.kind != "DaemonSet":
        spec.setdefault("replicas", 1)
        if not isinstance(spec["replicas"], int) or spec["replicas"] < 0:
            raise invalid(rtype.kind, rtype.group, name, [(
                "spec.replicas", "FieldValueInvalid",
                "Invalid value: %s: must be greater than or equal to 0" % shown(spec["replicas"]))])
    if rtype.kind == "Deployment":
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
    elif rtype.kind == "StatefulSet":
        spec.setdefault("serviceName", "")
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    elif rtype.kind == "DaemonSet":
        spec.setdefault("updateStrategy", {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    if old is None:
        return
    if spec.get("selector") != old.get("spec", {}).get("selector"):
        raise invalid(rtype.kind, rtype.group, name, [(
            "spec.selector", "FieldValueInvalid", "Invalid value: field is immutable")])
    if rtype.kind == "StatefulSet":
        for field in _IMMUTABLE_STATEFULSET_FIELDS:
            if spec.get(field) != old.get("spec", {}).get(field):
                raise invalid(rtype.kind, rtype.group, name, [(
                    "spec", "FieldForbidden", "Forbidden: updates to statefulset spec for fields "
                    "other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
                    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")])


def _prepare_event(rtype: ResourceType, obj: dict, old: Optional[dict]) -> None:
    """Events are stored as given."""


SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
NODE_PORT_RANGE = (30000, 32767)


def _hash_number(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")


def _service_port_problem(port: dict, number: int, several: bool) -> Optional[Tuple[str, str]]:
    field = "spec.ports[%d]" % number
    if not isinstance(port, dict):
        return field, "Invalid value: a port must be an object"
    value = port.get("port")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return field + ".port", "Invalid value: %s: must be between 1 and 65535, inclusive" % shown(value)
    if several and not port.get("name"):
        return field + ".name", "Required value"
    if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
        return field + ".protocol", 'Unsupported value: %s: supported values: "SCTP", "TCP", "UDP"' % shown(
            port.get("protocol"))
    return None


def _prepare_service(rtype: ResourceType, obj: dict, old: Optional[dict]) -> None:
    """Defaults of a Service: type, protocol, targetPort, cluster IP and node ports (allocated once)."""
    name, namespace = obj["metadata"]["name"], obj["metadata"].get("namespace", "")
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        _required(rtype, name, "spec")
    spec.setdefault("type", "ClusterIP")
    if spec["type"] not in SERVICE_TYPES:
        raise invalid("Service", "", name, [("spec.type", "FieldValueNotSupported", "Unsupported value: %s: "
                                             "supported values: %s" % (shown(spec["type"]), ", ".join(
                                                 '"%s"' % kind for kind in SERVICE_TYPES)))])
    ports = spec.get("ports") or []
    if spec["type"] != "ExternalName" and not ports:
        _required(rtype, name, "spec.ports")
    selector = spec.get("selector")
    if selector is not None and (not isinstance(selector, dict)
                                 or not all(isinstance(value, str) for value in selector.values())):
        raise bad_request("Service in version \"v1\" cannot be handled as a Service: spec.selector must "
                          "map strings to strings")
    old_spec = (old or {}).get("spec") or {}
    old_node_ports = {(port.get("name"), port.get("port")): port.get("nodePort")
                      for port in old_spec.get("ports") or [] if isinstance(port, dict)}
    for number, port in enumerate(ports):
        problem = _service_port_problem(port, number, len(ports) > 1)
        if problem:
            raise invalid("Service", "", name, [(problem[0], "FieldValueInvalid", problem[1])])
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
        if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
            kept = old_node_ports.get((port.get("name"), port["port"])) or next(
                (node_port for (port_name, _value), node_port in old_node_ports.items()
                 if port_name == port.get("name") and node_port), None)
            low, high = NODE_PORT_RANGE
            port["nodePort"] = kept or low + _hash_number("%s/%s/%d" % (namespace, name, number)) % (high - low + 1)
        elif spec["type"] not in ("NodePort", "LoadBalancer"):
            port.pop("nodePort", None)
    if spec["type"] != "ExternalName":
        cluster_ip = old_spec.get("clusterIP")
        if cluster_ip is None:
            number = _hash_number("%s/%s" % (namespace, name))
            cluster_ip = "10.96.%d.%d" % (number // 256 % 256, 2 + number % 250)
        if spec.get("clusterIP") not in (None, "", cluster_ip):
            raise invalid("Service", "", name, [("spec.clusterIPs[0]", "FieldValueInvalid",
                                                 "Invalid value: %s: field is immutable" % shown(spec["clusterIP"]))])
        spec["clusterIP"], spec["clusterIPs"] = cluster_ip, [cluster_ip]
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)


def _store_as_given(rtype: ResourceType, obj: dict, old: Optional[dict]) -> None:
    """Kinds the sandbox keeps but does not act on (no RBAC, no CronJob controller)."""


_PREPARE = {"Event": _prepare_event, "Secret": _prepare_secret, "ConfigMap": _prepare_configmap,
            "Namespace": _prepare_namespace, "Pod": _prepare_pod, "Deployment": _prepare_workload,
            "StatefulSet": _prepare_workload, "DaemonSet": _prepare_workload,
            "ReplicaSet": _prepare_workload, "Service": _prepare_service,
            "ServiceAccount": _store_as_given, "CronJob": _store_as_given, "Role": _store_as_given,
            "RoleBinding": _store_as_given}


# Status fields without omitempty: the API server always writes them, and clients rely on it.
_REQUIRED_STATUS = {
    "Pod": {"phase": "Pending"},
    "Service": {"loadBalancer": {}},
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "ReplicaSet": {"replicas": 0},
    "DaemonSet": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                  "numberReady": 0},
}


def initial_status(rtype: ResourceType) -> dict:
    """The status of a newly created object, before any controller has looked at it."""
    return copy.deepcopy(_REQUIRED_STATUS.get(rtype.kind, {}))


def prepare(rtype: ResourceType, obj: dict, old: Optional[dict] = None) -> None:
    """Validate ``obj`` (a new object, or the new state of ``old``) and fill defaults in place."""
    name = obj["metadata"]["name"]
    _check_name(rtype, name)
    _check_string_map(rtype, obj, "labels")
    _check_string_map(rtype, obj, "annotations")
    _PREPARE[rtype.kind](rtype, obj, old)


# ---- OpenAPI v3 ----------------------------------------------------------------------------------

def _gv_path(group: str, version: str) -> str:
    return "apis/%s/%s" % (group, version) if group else "api/%s" % version


def openapi_root() -> dict:
    """/openapi/v3: where each group-version's document is."""
    return {"paths": {_gv_path(group, version): {
        "serverRelativeURL": "/openapi/v3/%s?hash=sandbox" % _gv_path(group, version)}
        for group, version in GROUP_VERSIONS}}


def openapi_document(group: str, version: str) -> dict:
    """A group-version's OpenAPI v3 document, as far as kubectl reads it.

    It names each kind's PATCH operation with the ``fieldValidation`` parameter, which tells
    kubectl to leave validation to the server (so ``apply``/``create -f`` need no
    ``--validate=false``); there are no schemas, and the sandbox validates only what it models.
    """
    paths = {}
    for rtype in RESOURCE_TYPES:
        if (rtype.group, rtype.version) != (group, version):
            continue
        scope = "/namespaces/{namespace}" if rtype.namespaced else ""
        operation = {
            "operationId": "patch%s" % rtype.kind,
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": rtype.group, "version": rtype.version,
                                                "kind": rtype.kind},
            "parameters": [{"name": name, "in": "query", "schema": {"type": "string"}}
                           for name in ("dryRun", "fieldManager", "fieldValidation", "force")],
            "responses": {"200": {"description": "OK"}},
        }
        paths["/%s%s/%s/{name}" % (_gv_path(group, version), scope, rtype.plural)] = {"patch": operation}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (okera-auth-sandbox)",
                                         "version": SERVER_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}
