# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP requests of the modules that speak to a service (Okera's REST API, a Pushgateway).

Through Ansible's ``open_url`` machinery, as Ansible modules are expected to (proxies from the
environment, TLS as the caller's SSL context says), without ``~/.netrc``, whose credentials
would be sent to any host it names. Errors are urllib's: ``HTTPError`` for an answer with an
error status, ``URLError`` for a connection that could not be made.
"""
from __future__ import annotations

import ssl
from typing import Any, Mapping, Optional

from ansible.module_utils.urls import Request


def http_open(method: str, url: str, headers: Mapping[str, str], timeout: float,
              context: Optional[ssl.SSLContext] = None, data: Optional[bytes] = None) -> Any:
    """The response of one request (a context manager with ``status`` and ``read``)."""
    return Request().open(method, url, data=data, headers=dict(headers), timeout=timeout, context=context,
                          use_netrc=False, follow_redirects="urllib2")
