# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster of a module that often makes no cluster call (a REST check given its URL, a plan of
tokens kept in S3): the kubernetes library, half a second to import, is imported at the first call."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ansible.module_utils.basic import missing_required_lib

from .auth import ClusterError

# pylint: disable=import-outside-toplevel  # the point of this file: see above


class LazyCluster:
    """The API client that `params` (the shared auth options) name, built at the first call."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params
        self._api_client: Optional[Any] = None

    def api_client(self) -> Any:
        """The API client; ClusterError (one line) when the library is missing or the options are wrong."""
        if self._api_client is None:
            from .client import HAS_KUBERNETES, build_api_client
            if not HAS_KUBERNETES:
                raise ClusterError(missing_required_lib("kubernetes"))
            self._api_client = build_api_client(self.params)
        return self._api_client

    def read_secret(self, namespace: str, name: str) -> Any:
        """The Secret (secrets.SecretData)."""
        from .secrets import read_secret
        return read_secret(self.api_client(), namespace, name)

    def read_service(self, namespace: str, name: str) -> Dict[str, Any]:
        """The Service as the API server returns it."""
        from .services import read_service
        return read_service(self.api_client(), namespace, name)
