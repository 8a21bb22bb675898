"""Where webhooks may send: public addresses only, unless `BOSUN_WEBHOOK_ALLOWED` names the network.

A receiver's host is resolved when the webhook is made (a name that does not resolve yet is let through) and
again before every attempt; every address it resolves to must be allowed, in whatever spelling the URL
wrote it (`127.1`, `2130706433`, `[::ffff:127.0.0.1]`), and the attempt then connects to the address that was
checked, so a name that resolves elsewhere a moment later is never followed there.
"""

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings


class Refused(Exception):
    pass


def _public(ip) -> bool:
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 6 and (ip.sixtofour is not None or ip.teredo is not None):
        return False
    return ip.is_global and not ip.is_multicast


def allowed(ip) -> bool:
    return any(ip in network for network in settings.BOSUN_WEBHOOK_ALLOWED) or _public(ip)


def _resolve(host: str, port: int) -> list:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


def _refusal(host: str, ip) -> str:
    return (f"{host} is {ip}, not a public address: Bosun sends webhooks to public receivers only (an admin "
            "may allow internal networks with BOSUN_WEBHOOK_ALLOWED).")


def check(url: str):
    """Refuse a URL whose host resolves to an address that is not allowed (when it resolves at all)."""
    parts = urlsplit(url)
    try:
        found = _resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError, ValueError):
        return  # checked again before each attempt
    for ip in found:
        if not allowed(ip):
            raise Refused(_refusal(parts.hostname, ip))


def pinned(url: str) -> tuple[str, str, str]:
    """(the URL with the checked address in place of its host, the Host header, the TLS server name)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = _resolve(parts.hostname, port)
    except (OSError, UnicodeError, ValueError):
        raise Refused(f"{parts.hostname} could not be resolved.") from None
    for ip in found:
        if not allowed(ip):
            raise Refused(_refusal(parts.hostname, ip))
    ip = found[0]
    address = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = address + (f":{parts.port}" if parts.port else "")
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header, parts.hostname
