#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check that an Okera cluster works with a token, through its REST API."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: okera_rest_check
short_description: Check that an Okera cluster works with a token, through its REST API
version_added: 0.1.0
description:
  - "Finds the cluster's Okera REST API and asks it, with O(token), what a user of the cluster
    would ask - C(GET /api/info) (no token; the cluster must report C(is_jwt_enabled)),
    C(GET /api/get-user) (who the token is; it must be O(subject) when given) and
    C(GET /api/databases) (the databases the token sees), each with the header
    C(Authorization: Bearer <token>). It fails when any of them does not succeed."
  - While the cluster restarts, connection failures and C(502), C(503) and C(504) answers are
    retried for O(wait_timeout) seconds, at most O(wait_sleep) seconds apart (the first retries come
    sooner); any other answer (C(401) for a token the cluster does not accept) fails at once.
  - The REST API is at O(url) when given. Otherwise it is found like a client outside the cluster
    finds it - from Service O(service_name) of type C(LoadBalancer) in O(namespace) - its
    C(status.loadBalancer.ingress) address and its port (O(service_port), else the first one).
    The API server's service proxy is not used, since it drops the bearer header.
  - Without O(token) it only finds the URL (no HTTP request), so that a playbook can learn before
    changing anything whether a check will be possible.
  - The token is never returned or logged, and is removed from any message.
extends_documentation_fragment:
  - okera.auth.k8s_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: It only reads, so it runs in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: It changes nothing.
    support: full
options:
  url:
    description:
      - Base URL of the Okera REST API, e.g. C(https://okera.example.com:8083) (Okera 2.x listens on
        8083, 1.x on 5000). When given, no Service is read and the cluster-auth options are unused.
    type: str
  namespace:
    description: Namespace of O(service_name).
    type: str
    default: default
  service_name:
    description: The Service in front of Okera's REST server pods.
    type: str
    default: cdas-rest-server
  service_port:
    description: Name or number of the Service port to use; the first port when unset.
    type: str
  scheme:
    description: Scheme of a URL found from the Service (a Service does not say whether it speaks TLS).
    type: str
    choices: [http, https]
    default: http
  token:
    description:
      - The token to check, e.g. the new system token. Never logged.
      - Without it the module only finds the URL.
    type: str
  subject:
    description: The user C(/api/get-user) must answer for O(token), e.g. C(okera_system_user); not checked when unset.
    type: str
  rest_validate_certs:
    description: Validate the REST API's TLS certificate (for an https URL).
    type: bool
    default: true
  rest_ca_cert:
    description: CA certificate(s) (PEM file) to validate the REST API's certificate with, instead of the system's.
    type: path
  timeout:
    description: Seconds to wait for one answer.
    type: int
    default: 10
  wait_timeout:
    description: Seconds to keep retrying while the REST API is unreachable or answers 502/503/504.
    type: int
    default: 30
  wait_sleep:
    description: At most this many seconds between two attempts; the first retries come sooner (0.25, 0.5, 1 s, ...
      after the first).
    type: int
    default: 2
notes:
  - The cluster-auth options (O(kubeconfig), O(context), O(validate_certs), ...) are those of the
    Kubernetes API server, used only to read the Service; O(rest_validate_certs) and O(rest_ca_cert) are
    the REST API's.
seealso:
  - module: okera.auth.jwt_token_info
  - module: okera.auth.system_token_plan
author:
  - okera.auth maintainers (@okera)
"""

EXAMPLES = r"""
- name: Check that the cluster works with the new system token
  okera.auth.okera_rest_check:
    kubeconfig: ~/.kube/okera-prod.yaml
    namespace: okera
    token: "{{ new_token }}"
    subject: okera_system_user
  register: rest

- name: Check a cluster whose REST API is behind an ingress, with a private CA
  okera.auth.okera_rest_check:
    url: https://okera.example.com:8083
    token: "{{ lookup('ansible.builtin.file', '~/.okera/token') }}"
    rest_ca_cert: /etc/pki/okera-ca.pem

- name: Only find the URL (no token, no request to the REST API)
  okera.auth.okera_rest_check:
    namespace: okera
  register: where
"""

RETURN = r"""
url:
  description: Base URL of the REST API.
  returned: success
  type: str
  sample: http://203.0.113.10:8083
url_from:
  description: Where the URL came from - C(given), or the Service, e.g. C(Service okera/cdas-rest-server).
  returned: success
  type: str
url_found:
  description: Whether the URL was given or found (false when the failure is that it could not be found).
  returned: always
  type: bool
reason:
  description: Why the URL could not be found (or why the given one is not a URL), without advice.
  returned: when RV(url_found) is false
  type: str
  sample: Service okera/cdas-rest-server has no load balancer ingress yet (status.loadBalancer.ingress is empty)
checked:
  description: Whether the REST API was asked (false without O(token)).
  returned: success
  type: bool
version:
  description: The cluster's version, as C(/api/info) reports it.
  returned: when O(token) is given
  type: str
is_jwt_enabled:
  description: What C(/api/info) reports.
  returned: when O(token) is given
  type: bool
user:
  description: The user C(/api/get-user) answered for the token.
  returned: when O(token) is given
  type: str
  sample: okera_system_user
databases:
  description: The databases C(/api/databases) listed.
  returned: when O(token) is given
  type: list
  elements: str
  sample: [default, okera_sample, okera_system]
database_count:
  description: How many.
  returned: when O(token) is given
  type: int
attempts:
  description: How many rounds of requests it took (more than one while the cluster was restarting).
  returned: when O(token) is given
  type: int
elapsed:
  description: Seconds spent.
  returned: when O(token) is given
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.okera.auth.plugins.module_utils._k8s.auth import auth_argument_spec, describe_target
from ansible_collections.okera.auth.plugins.module_utils._k8s.lazy import LazyCluster
from ansible_collections.okera.auth.plugins.module_utils.errors import OkeraAuthError
from ansible_collections.okera.auth.plugins.module_utils.okera_rest import RestCheckError, check_cluster, find_rest_api, ssl_context


def main() -> None:
    spec = auth_argument_spec()
    spec.update({
        "url": {"type": "str"},
        "namespace": {"type": "str", "default": "default"},
        "service_name": {"type": "str", "default": "cdas-rest-server"},
        "service_port": {"type": "str"},
        "scheme": {"type": "str", "choices": ["http", "https"], "default": "http"},
        "token": {"type": "str", "no_log": True},
        "subject": {"type": "str"},
        "rest_validate_certs": {"type": "bool", "default": True},
        "rest_ca_cert": {"type": "path"},
        "timeout": {"type": "int", "default": 10},
        "wait_timeout": {"type": "int", "default": 30},
        "wait_sleep": {"type": "int", "default": 2},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    if params["timeout"] < 1 or params["wait_timeout"] < 0 or params["wait_sleep"] < 1:
        module.fail_json(msg="timeout and wait_sleep must be 1 or more, wait_timeout 0 or more (seconds)")
    try:
        url, url_from = find_rest_api(params["url"], LazyCluster(params).read_service, params["namespace"],
                                      params["service_name"], params["scheme"], params["service_port"])
    except OkeraAuthError as error:
        if params["url"]:
            module.fail_json(msg=str(error), url_found=False, reason=str(error))
        module.fail_json(msg="cannot find the Okera REST API: %s; give its URL in url" % error, url_found=False,
                         reason=str(error), cluster=describe_target(params))
    result = {"changed": False, "url": url, "url_from": url_from, "url_found": True, "checked": False}
    if params["token"] is None:
        module.exit_json(**result)
    try:
        context = ssl_context(params["rest_validate_certs"], params["rest_ca_cert"]) if url.startswith("https:") else None
        check = check_cluster(url, params["token"], params["subject"], params["timeout"], params["wait_timeout"],
                              params["wait_sleep"], context)
    except RestCheckError as error:
        module.fail_json(msg=str(error), **result)
    result.update(check.as_dict(), checked=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
