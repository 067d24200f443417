# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a Service, to find what its load balancer exposes."""
from __future__ import annotations

from typing import Any, Dict

from .auth import ClusterError
from .client import api_path, request


def read_service(api_client: Any, namespace: str, name: str) -> Dict[str, Any]:
    """The Service as the API server returns it; ClusterError (one line) when it cannot be read."""
    try:
        return request(api_client, "get Service %s/%s" % (namespace, name), "GET", api_path(namespace, "services", name))
    except ClusterError as error:
        if error.status == 404:
            raise ClusterError("Service %s/%s does not exist" % (namespace, name), 404) from None
        raise
