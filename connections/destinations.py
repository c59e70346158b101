"""Where the portal may send a request on a tenant's behalf: public addresses over https.

A tenant admin types the endpoint URLs, so every one of them is a way to make the server
reach something: its loopback (Redis, the database, the admin), the private network, the
cloud metadata service. The same rules serve the forms (a clear error per field) and the
egress path (egress.py), which checks every address a name resolves to and connects to the
address it checked, so DNS cannot answer differently between the check and the connect.

Allowed besides public https: loopback while the sandbox is on (development and tests), and
the hosts an operator lists in EGRESS_ALLOWED_HOSTS (an on-premises provider: names, IPs or
networks), to which plain http and private addresses are allowed as well.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

# Names that always mean this machine or its cloud's internals, whatever DNS says.
INTERNAL_NAMES = ("localhost", "metadata.google.internal", "metadata")
INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")
# IPv6 prefixes that carry an IPv4 address inside (the embedded address is what gets reached).
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(ValueError):
    """A URL or address the portal will not send a request to; the message says why."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64 or ip in NAT64_LOCAL or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: Address) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared (CGNAT),
    multicast, reserved, unspecified or documentation, in any embedded spelling."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return is_public(inner)
    return ip.is_global and not ip.is_multicast


def parse_address(host: str) -> Address | None:
    """The address a URL host spells, including the legacy IPv4 forms every resolver takes
    (2130706433, 0177.0.0.1, 0x7f.1, 127.1); None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _allowances():
    names, networks = set(), []
    for entry in settings.EGRESS_ALLOWED_HOSTS:
        entry = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            if entry:
                names.add(entry.rstrip("."))
    return names, networks


def _operator_allows(host: str, ip: Address | None = None) -> bool:
    names, networks = _allowances()
    if host.lower().rstrip(".") in names:
        return True
    return ip is not None and any(ip in network for network in networks)


def _loopback_allowed(ip: Address | None, host: str) -> bool:
    if not settings.SANDBOX_ENABLED:
        return False
    if ip is not None:
        inner = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
        return (inner or ip).is_loopback
    return host.lower().rstrip(".") == "localhost"


def check_url(url: str) -> None:
    """Raise Refused unless the URL may be a destination (before any DNS lookup)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise Refused("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Refused("must be an https:// URL with a host")
    if parts.username or parts.password:
        raise Refused("must not carry a user name or password")
    ip = parse_address(host)
    local = _loopback_allowed(ip, host) or _operator_allows(host, ip)
    if parts.scheme != "https" and not local:
        raise Refused("must use https")
    if local:
        return
    name = host.lower().rstrip(".")
    if ip is None and (name in INTERNAL_NAMES or name.endswith(INTERNAL_SUFFIXES)):
        raise Refused(f"{host} is an internal name")
    if ip is not None and not is_public(ip):
        raise Refused(f"{host} is not a public address")


def resolve(host: str, port: int) -> str:
    """The address to connect to: every address the host resolves to is checked, and the
    first is returned, so the connection goes where the check looked. Raises Refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Refused(f"{host} does not resolve ({exc.strerror})") from None
    addresses = [info[4][0] for info in infos]
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not (is_public(ip) or _loopback_allowed(ip, host) or _operator_allows(host, ip)):
            raise Refused(f"{host} resolves to {address}, which is not a public address")
    if not addresses:
        raise Refused(f"{host} does not resolve")
    return addresses[0]
