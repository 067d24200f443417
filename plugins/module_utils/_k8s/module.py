# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible side of the Kubernetes modules: one way to build the module and its client."""

from __future__ import annotations

from typing import Any, Dict

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from .auth import ClusterError, auth_argument_spec
from .client import HAS_KUBERNETES, KUBERNETES_IMPORT_ERROR, build_api_client


def cluster_module(argument_spec: Dict[str, Any], **kwargs: Any) -> AnsibleModule:
    """An AnsibleModule with the shared cluster-auth options merged into `argument_spec`."""
    spec = auth_argument_spec()
    spec.update(argument_spec)
    module = AnsibleModule(argument_spec=spec, **kwargs)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    return module


def api_client_for(module: AnsibleModule) -> Any:
    """The API client the module's auth options name; a one-line failure otherwise."""
    try:
        return build_api_client(module.params)
    except ClusterError as error:
        module.fail_json(msg=str(error))
