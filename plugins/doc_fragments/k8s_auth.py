# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cluster-auth options shared by the Kubernetes modules (the options of kubernetes.core)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  action_group:
    description: Use C(group/okera.auth.k8s) in C(module_defaults) to set the cluster options of
      every okera.auth module that talks to a cluster at once.
    support: full
    membership:
      - okera.auth.k8s
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig itself as a dictionary.
      - Without it (and without O(host)), C(KUBECONFIG) or C(~/.kube/config) is used, then the
        in-cluster service account when running inside a pod.
      - Falls back to the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: raw
  context:
    description:
      - The kubeconfig context to use; the kubeconfig's current context when not set.
      - Falls back to E(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - URL of the API server, e.g. C(https://10.0.0.1:6443). When set, the kubeconfig is not
        read; give the credentials with O(api_key), O(username)/O(password) or a client certificate.
      - Falls back to E(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - Bearer token to authenticate with. Overrides the kubeconfig user's credentials.
      - Falls back to E(K8S_AUTH_API_KEY).
    type: str
  username:
    description:
      - User name for HTTP basic authentication (only API servers that still allow it), with O(password).
      - Falls back to E(K8S_AUTH_USERNAME).
    type: str
  password:
    description:
      - Password for HTTP basic authentication, with O(username).
      - Falls back to E(K8S_AUTH_PASSWORD).
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. When not set, the kubeconfig decides
        (verification on unless it says C(insecure-skip-tls-verify)).
      - Falls back to E(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to the CA certificate that signed the API server's certificate.
      - Falls back to E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate to authenticate with, with O(client_key).
      - Falls back to E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the private key of O(client_cert).
      - Falls back to E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - URL of an HTTP proxy to reach the API server through.
      - Falls back to E(K8S_AUTH_PROXY).
    type: str
  impersonate_user:
    description:
      - User name to act as (the C(Impersonate-User) header); the authenticated user needs the
        RBAC permission to impersonate.
      - Falls back to E(K8S_AUTH_IMPERSONATE_USER).
    type: str
notes:
  - The order is the one of kubernetes.core - explicit O(host) credentials, then a kubeconfig,
    then the in-cluster service account. Options given explicitly (O(api_key), O(ca_cert),
    O(validate_certs), O(proxy), ...) override what the kubeconfig says.
  - Failures are reported as one line that says what to check (401 credentials, 403 RBAC,
    404 names, connection refused, DNS, TLS); credentials never appear in them.
  - The module runs where Ansible runs it. For clusters the usual way is one inventory host per
    cluster with C(ansible_connection=local), so it runs on the controller.
requirements:
  - kubernetes (the official Python client) >= 28
"""
