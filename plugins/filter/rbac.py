# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The least-privilege RBAC rules of a system-token rotation, for the manifests of its CronJob."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.okera.auth.plugins.module_utils.errors import OkeraAuthError
from ansible_collections.okera.auth.plugins.module_utils._k8s.rbac import rotation_rules


def rotation_rbac_rules(namespace, secret_name, config_secret_name=None, restart_mode="rollout",
                        restart_namespace=None, restart_kinds=("Deployment", "StatefulSet", "DaemonSet"),
                        restart_names=(), rest_service=None):
    """[{namespace, rules}] of the Roles a rotation of Secret namespace/secret_name needs."""
    try:
        # Empty texts and null lists mean "not given", as in the role's variables; types are checked there.
        return rotation_rules(namespace, secret_name, config_secret_name or None, restart_mode,
                              restart_namespace or None, () if restart_kinds is None else restart_kinds,
                              restart_names, rest_service or None)
    except OkeraAuthError as error:
        raise AnsibleFilterError("rotation_rbac_rules: %s" % error) from None


class FilterModule:
    def filters(self):
        return {"rotation_rbac_rules": rotation_rbac_rules}
