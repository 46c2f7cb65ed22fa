"""Which IP addresses an outbound fetch may connect to: the SSRF rules behind ``oauth_server.fetch``.

draft-ietf-oauth-client-id-metadata-document-02 §8.6: an authorization server "MUST NOT fetch
a Client ID Metadata Document URL or any URLs contained within a Client ID Metadata Document
that resolve to special-use IP addresses as defined in [RFC6890]", and may relax this for
loopback only in development. ``classify`` names the range an address falls in; ``refusal``
applies the policy: public addresses pass, loopback only when allowed, private ranges only when
allowed, and every other special-use range never.

``ipaddress``'s properties follow the IANA registries of the Python release in use and miss some
ranges (in 3.11 ``224.0.0.1.is_global`` is true, and so is ``is_global`` for 6to4, NAT64,
``fec0::/10`` and ``3fff::/20``), so the ranges that matter are also listed here, explicitly,
and an address must pass both. An IPv6 address that carries an IPv4 address is judged by that
IPv4 address, because a translator or the host's own stack delivers the packets there.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Literal

Kind = Literal["public", "loopback", "private", "link-local", "multicast", "unspecified", "broadcast",
               "documentation", "reserved", "translated", "scoped"]

_V4 = IPv4Network
_V6 = IPv6Network

# Private networks an operator may reach on purpose (an issuer inside the company network):
# RFC 1918, RFC 6598 shared address space (carrier-grade NAT), RFC 2544 and RFC 5180
# benchmarking, RFC 4193 unique local addresses, RFC 8215 local-use IPv4/IPv6 translation.
_PRIVATE = (_V4("10.0.0.0/8"), _V4("172.16.0.0/12"), _V4("192.168.0.0/16"), _V4("100.64.0.0/10"),
            _V4("198.18.0.0/15"), _V6("fc00::/7"), _V6("2001:2::/48"), _V6("64:ff9b:1::/48"))
# RFC 5737 and RFC 3849 / RFC 9637: addresses for examples, never a real server.
_DOCUMENTATION = (_V4("192.0.2.0/24"), _V4("198.51.100.0/24"), _V4("203.0.113.0/24"),
                  _V6("2001:db8::/32"), _V6("3fff::/20"))
# The rest of the special-use registries (RFC 6890): "this network" (RFC 1122), IETF protocol
# assignments (RFC 6890 §2.2.2), the retired 6to4 relay anycast (RFC 7526), the old class E
# (RFC 1112), the discard prefix (RFC 6666), IETF protocol assignments in IPv6 (RFC 2928; Teredo,
# ORCHID, AMT, AS112), SRv6 SIDs (RFC 9602), deprecated site-local (RFC 3879), and ::/8, which
# holds the IPv4-compatible (RFC 4291 §2.5.5.1, deprecated) and IPv4-translated (RFC 6145) forms.
_RESERVED = (_V4("0.0.0.0/8"), _V4("192.0.0.0/24"), _V4("192.88.99.0/24"), _V4("240.0.0.0/4"),
             _V6("100::/64"), _V6("2001::/23"), _V6("5f00::/16"), _V6("fec0::/10"), _V6("::/8"))
# RFC 6052 §2.1: the well-known NAT64 prefix, with the IPv4 address in the last 32 bits.
_NAT64 = _V6("64:ff9b::/96")
# RFC 4380: Teredo tunnels to a NAT-ed IPv4 host whose address is obfuscated in the last bits.
_TEREDO = _V6("2001::/32")
_BROADCAST = IPv4Address("255.255.255.255")


def parse(text: str) -> IPv4Address | IPv6Address | None:
    """The address ``text`` spells (``::1`` or ``[::1]``), or None when it is a host name."""
    try:
        return ip_address(text[1:-1] if text.startswith("[") and text.endswith("]") else text)
    except ValueError:
        return None


def classify(address: IPv4Address | IPv6Address) -> Kind:
    """The special-use range ``address`` falls in, or ``"public"`` when it is in none."""
    if isinstance(address, IPv6Address):
        if address.scope_id:  # fe80::1%eth0 names a link, not a host on the Internet
            return "scoped"
        # RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is how a dual-stack socket reaches IPv4 a.b.c.d.
        if address.ipv4_mapped is not None:
            return classify(address.ipv4_mapped)
        if address in _TEREDO:
            return "translated"
        embedded = _translated_ipv4(address)
        if embedded is not None:
            # A NAT64 translator or 6to4 relay delivers to the embedded address, on its own
            # network: public and private destinations keep their kind; its loopback, link-local
            # and other special ranges are nothing this host's policy can allow.
            kind = classify(embedded)
            return kind if kind in ("public", "private") else "translated"
    if address.is_unspecified:
        return "unspecified"
    if address == _BROADCAST:
        return "broadcast"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:  # 169.254.0.0/16 holds the cloud metadata service, 169.254.169.254
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if _within(address, _DOCUMENTATION):
        return "documentation"
    if _within(address, _PRIVATE):
        return "private"
    if _within(address, _RESERVED) or address.is_reserved or address.is_private or not address.is_global:
        return "reserved"
    return "public"


def refusal(address: IPv4Address | IPv6Address, *, allow_private: bool, allow_loopback: bool) -> str | None:
    """Why a fetch must not connect to ``address`` under this policy, or None when it may."""
    kind = classify(address)
    if kind == "public" or (kind == "loopback" and allow_loopback) or (kind == "private" and allow_private):
        return None
    return f"the host resolves to a {kind} address"


def _translated_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address inside a NAT64 (RFC 6052) or 6to4 (RFC 3056, ``2002::/16``) address."""
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _within(address: IPv4Address | IPv6Address, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)
