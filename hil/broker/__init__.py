"""mosquitto as a managed process: rendered config, plain/TLS/authenticated listeners, faults."""

from hil.broker.broker import (
    AUTH,
    PLAIN,
    PLAIN6,
    TLS,
    TLS_AUTH,
    TLS_REFUSING,
    Broker,
    BrokerError,
    find_program,
    ipv6_loopback_available,
)
from hil.broker.config import AclRule, Listener

__all__ = [
    "AUTH",
    "PLAIN",
    "PLAIN6",
    "TLS",
    "TLS_AUTH",
    "TLS_REFUSING",
    "AclRule",
    "Broker",
    "BrokerError",
    "Listener",
    "find_program",
    "ipv6_loopback_available",
]
