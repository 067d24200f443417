# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP requests of the modules that speak to a service (Okera's REST API, a Pushgateway), and
how a URL given by a user is shown in a message.

Requests go through Ansible's ``open_url`` machinery, as Ansible modules are expected to (proxies
from the environment, TLS as the caller's SSL context says), without ``~/.netrc``, whose
credentials would be sent to any host it names. Errors are urllib's: ``HTTPError`` for an answer
with an error status, ``URLError`` for a connection that could not be made.
"""
from __future__ import annotations

import re
import ssl
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

# [scheme:]//user:password@ - up to the last "@" of the authority, as urlsplit reads it.
_USERINFO = re.compile(r"(?i)((?:\b[a-z][a-z0-9+.-]*:)?//)[^/?#\s]*@")
_AUTHORITY_END = re.compile(r"[/?#]")


def http_open(method: str, url: str, headers: Mapping[str, str], timeout: float,
              context: Optional[ssl.SSLContext] = None, data: Optional[bytes] = None) -> Any:
    """The response of one request (a context manager with ``status`` and ``read``)."""
    # Imported here: the programs (okera-token, okera-authserver) use the URL helpers below without Ansible.
    from ansible.module_utils.urls import Request  # pylint: disable=import-outside-toplevel  # see above

    return Request().open(method, url, data=data, headers=dict(headers), timeout=timeout, context=context,
                          use_netrc=False, follow_redirects="urllib2")


def _authority(url: str) -> str:
    """The host part of ``url`` with any user name and password: after "//", or from the start without one."""
    text = str(url).strip()
    netloc = urlsplit(text).netloc if "//" in text else ""
    return netloc or _AUTHORITY_END.split(text.partition("://")[2] or text, 1)[0]


def has_userinfo(url: Any) -> bool:
    """Whether ``url`` carries a user name or password (``scheme://user:password@host``)."""
    return "@" in _authority(str(url))


def without_userinfo(text: Any) -> str:
    """``text`` (a URL, or a message with URLs in it) with the user name and password of each URL left out.

    Messages show URLs given by users through this, so that credentials written into one never reach a log.
    """
    text = _USERINFO.sub(r"\1", str(text))
    stripped = text.strip()
    if "://" not in stripped and stripped and not any(char.isspace() for char in stripped):
        authority = _AUTHORITY_END.split(stripped, 1)[0]
        if "@" in authority:  # user:password@host:port, given without its scheme
            return stripped[authority.rindex("@") + 1:]
    return text
