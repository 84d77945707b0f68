"""Network endpoints as the configuration names them: `IP:port`, `[IPv6]:port`, `IP`, CIDR.

The configuration validates `crawl.allowed_private_endpoints` with the same parser
the crawler's egress policy (`crawlers.egress`) enforces them with, so a value that
loads is a value the policy understands. It lives in the core because the core
must not import a stage.
"""

from __future__ import annotations

import ipaddress

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_endpoint(text: str) -> tuple[IPNetwork, int | None]:
    """`IP:port`, `[IPv6]:port`, `IP` or a CIDR network -> (network, port or None).

    Raises ValueError with the accepted forms (host names are not accepted: what
    they resolve to can change, which is what the policy guards against).
    """
    value = text.strip()
    host, port = value, None
    try:
        if value.startswith("["):
            inner, _, rest = value[1:].partition("]")
            host = inner
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(value)
                port = int(rest[1:])
        elif value.count(":") == 1:
            host, _, port_text = value.partition(":")
            port = int(port_text)
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an endpoint: expected IP:port, [IPv6]:port, IP or a CIDR "
            "network such as 10.0.0.0/8"
        ) from None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{text!r}: port {port} is out of range")
    return network, port
