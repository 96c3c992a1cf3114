"""Which addresses an outbound request may reach: the SSRF policy, independent of any HTTP code.

A destination is judged by the IP addresses it resolves to, never by its name: ``internal.example.com`` can point
at 10.0.0.5. Every address a name resolves to must pass (an attacker's DNS may mix a public and a private answer).
Refused: loopback, private (RFC 1918, ULA), link-local, carrier-grade NAT, multicast, reserved, unspecified,
documentation/benchmark ranges and cloud metadata endpoints — also when wrapped in IPv6 (IPv4-mapped,
IPv4-compatible, 6to4, Teredo, NAT64) and when spelled the old ``inet_aton`` ways (``2130706433``, ``0x7f.1``,
``0177.0.0.1``), which the C resolver would happily turn into 127.0.0.1.

The ranges are listed explicitly rather than taken from ``ipaddress.is_private``/``is_global`` alone, whose
answers changed between Python patch releases.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Callable, Iterable, Sequence

from chatsupport.net.errors import OutboundError, OutboundRefused

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

# Always refused, even inside an allow-listed CIDR: only the exact address in the allow-list opens one.
METADATA_ADDRESSES = frozenset(ip_address(a) for a in (
    "169.254.169.254",   # AWS, GCP, Azure, DigitalOcean, OpenStack …
    "169.254.170.2",     # AWS ECS task metadata
    "169.254.169.123",   # AWS time sync
    "100.100.100.200",   # Alibaba Cloud
    "192.0.0.192",       # Oracle Cloud (classic)
    "fd00:ec2::254",     # AWS IMDS over IPv6
    "fd00:ec2::23",
))

BLOCKED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple((ip_network(net), label) for net, label in (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved (6to4 relay)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved (benchmarking)"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("64:ff9b:1::/48", "reserved (local NAT64)"),
    ("100::/64", "reserved (discard)"),
    ("2001::/23", "reserved (IETF protocol assignments)"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "reserved (site-local)"),
    ("ff00::/8", "multicast"),
))
NAT64 = ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ip_network("::/96")
NUMBER = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def _number(part: str) -> int | None:
    if not NUMBER.fullmatch(part):
        return None
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    return int(part, 8) if part.startswith("0") else int(part)


def legacy_ipv4(host: str) -> IPv4Address | None:
    """``inet_aton`` spellings (1–4 parts, each decimal, octal or hex): ``127.1``, ``2130706433``, ``0x7f.0.0.1``.

    A host whose last label is numeric is an address attempt by the URL standard's rules; one that does not add
    up to a valid IPv4 address is refused rather than handed to a resolver that might read it differently.
    """
    parts = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not parts or _number(parts[-1]) is None:
        return None
    parsed = [_number(part) for part in parts]
    values = [v for v in parsed if v is not None]
    if len(parts) > 4 or len(values) != len(parsed):
        raise OutboundRefused(f"{host!r} is not a valid address", host)
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise OutboundRefused(f"{host!r} is not a valid address", host)
    number = 0
    for value in head:
        number = number * 256 + value
    return IPv4Address((number << (8 * (5 - len(values)))) + last)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host spells directly (any spelling), or None for a name that needs DNS."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if "%" in bare:
        raise OutboundRefused("IPv6 zone identifiers are not allowed", host)
    try:
        return ip_address(bare)
    except ValueError:
        return legacy_ipv4(bare.lower()) if ":" not in bare else None


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, Teredo client, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or None when it is."""
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None and (reason := blocked_reason(inner)) is not None:
            return f"{reason} (inside an IPv6 address)"
    for network, label in BLOCKED_NETWORKS:
        if address.version == network.version and address in network:
            return label
    if address.is_multicast or address.is_reserved or address.is_unspecified or not address.is_global:
        return "not public"
    return None


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class Allowlist:
    """``CHATSUPPORT_OUTBOUND_ALLOWLIST``: host names (exact), IPs and CIDRs that may be private (any port)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> "Allowlist":
        hosts, networks = set(), []
        for entry in (normalize_host(e) for e in entries):
            if not entry:
                continue
            try:
                networks.append(ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return normalize_host(host) in self.hosts

    def allows_address(self, address: IPAddress, host: str = "") -> bool:
        if address in METADATA_ADDRESSES:  # a broad CIDR (or a listed name) never opens the metadata service
            return any(net.num_addresses == 1 and address in net for net in self.networks)
        if self.allows_host(host):
            return True
        return any(address.version == net.version and address in net for net in self.networks)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (the guard vets all of them)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Policy:
    allowlist: Allowlist = Allowlist()
    resolver: Resolver = system_resolver

    def check_literal(self, host: str) -> None:
        """The DNS-free part of the check, for validating a URL when it is submitted."""
        address = parse_ip_literal(host)
        if address is not None:
            self._judge(host, [address])
        elif normalize_host(host) == "localhost" or normalize_host(host).endswith(".localhost"):
            if not self.allowlist.allows_host(host):
                raise OutboundRefused(f"{host} is a loopback name", host)

    def vet(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` once and return the addresses to connect to; refuses if any is not allowed."""
        address = parse_ip_literal(host)
        if address is not None:
            addresses: list[IPAddress] = [address]
        else:
            addresses = self._resolve(host, port)
        self._judge(host, addresses)
        return addresses

    def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            answers = self.resolver(normalize_host(host), port)
        except (OSError, UnicodeError) as exc:
            raise OutboundError(f"cannot resolve {host}: {exc}", "dns_failed") from exc
        addresses = [ip_address(str(a).split("%")[0]) for a in answers]
        if not addresses:
            raise OutboundError(f"{host} has no address", "dns_failed")
        return addresses

    def _judge(self, host: str, addresses: list[IPAddress]) -> None:
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None and not self.allowlist.allows_address(address, host):
                raise OutboundRefused(
                    f"{host} resolves to {address}, a {reason} address; add it to CHATSUPPORT_OUTBOUND_ALLOWLIST "
                    "to allow it", host, str(address))
