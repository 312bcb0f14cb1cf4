"""Outbound HTTP to addresses a user chose (webhooks), kept off internal networks (SSRF).

A URL is refused when its host is, or resolves to, a loopback, private, link-local (cloud metadata
at 169.254.169.254), multicast, reserved or unspecified address, IPv4-mapped IPv6 included. The
check runs on the address actually connected to, inside the connection, so a name that resolves
to a public address when saved and to an internal one when used (DNS rebinding) is still refused.
Redirects are not followed (a public URL answering 302 → http://127.0.0.1/ would get around the
check) and no proxy from the environment is used.

``WEBHOOK_ALLOW_PRIVATE_NETWORKS=true`` lifts the address check, for a portal whose webhook
receivers live on the internal network on purpose.
"""

import http.client
import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings


class AddressRefused(OSError):
    """The destination is an internal address."""


def _allow_private():
    return getattr(settings, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)


def address_problem(ip: str) -> str:
    """Why ``ip`` may not be called ('' when it may)."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    for test, what in (
        (addr.is_loopback, "a loopback"),
        (addr.is_link_local, "a link-local"),
        (addr.is_private, "a private"),
        (addr.is_multicast, "a multicast"),
        (addr.is_reserved, "a reserved"),
        (addr.is_unspecified, "an unspecified"),
        (not addr.is_global, "a non-public (shared or special-purpose)"),
    ):
        if test:
            return f"{ip} is {what} address; webhooks may only call public addresses"
    return ""


def url_problem(url: str) -> str:
    """A cheap check when a URL is saved: IP literals and localhost names. The address actually
    connected to is checked again at every call (see ``guarded_opener``)."""
    if _allow_private():
        return ""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is this machine; webhooks may only call public addresses"
    try:
        return address_problem(host)
    except ValueError:
        return ""  # a name: resolved and checked when the webhook is called


def _guarded_create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **kw):
    host, port = address
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise AddressRefused(f"{host} does not resolve")
    if not _allow_private():
        for *_, sockaddr in infos:
            problem = address_problem(sockaddr[0])
            if problem:
                raise AddressRefused(f"{host}: {problem}")
    family, type_, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        sock.connect(sockaddr)  # the very address that was checked, not a second lookup
    except BaseException:
        sock.close()
        raise
    return sock


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._create_connection = _guarded_create_connection


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._create_connection = _guarded_create_connection  # TLS still checks the certificate of the name


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_GuardedHTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_GuardedHTTPSConnection, req, context=self._context)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx becomes an HTTPError: recorded as a failed attempt


def guarded_opener():
    """A urllib opener for http(s) only (no file:, ftp:, data:), with the address guard, no
    redirects and no proxies."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        _HTTPHandler(),
        _HTTPSHandler(),
        _NoRedirect(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),
    ):
        opener.add_handler(handler)
    return opener
