"""How each command of the L506 is answered: its result URC and its information lines.

The channel uses these to tell a command's answer from the URCs that arrive meanwhile.
Result patterns match the whole line, so `+MSUB: SUCCESS` is MSUB's result while `+MSUB: 0`
and `+MSUB: topic,5 bytes,hello` stay URCs; likewise `+MCONNECT: FAILURE,1` is a URC unless
an MCONNECT is in flight.
"""

from __future__ import annotations

import re

from hil.at.exchange import PLAIN, CommandSpec
from hil.l506.types import result_pattern

__all__ = [
    "AT",
    "ATE",
    "ATI",
    "CEREG_READ",
    "CFUN_READ",
    "CFUN_SET",
    "CGATT_READ",
    "CGATT_SET",
    "CGMR",
    "CPIN_READ",
    "CREG_READ",
    "MCONFIG",
    "MCONNECT",
    "MDISCONNECT",
    "MIPCLOSE",
    "MIPSTART",
    "MPUB",
    "MPUBEX",
    "MQTTCEER",
    "MQTTMSGGET",
    "MQTTMSGSET",
    "MQTTSSL",
    "MQTTSTATU",
    "MSUB",
    "MUNSUB",
    "PLAIN",
    "CommandSpec",
]

_ANY_LINE = re.compile(rb"")  # identity commands answer with free text before OK


def _with_result(name: str, *, prompt: bool = False) -> CommandSpec:
    return CommandSpec(name, result=result_pattern(name), prompt=prompt)


def _with_info(name: str, *patterns: bytes) -> CommandSpec:
    return CommandSpec(name, info=tuple(re.compile(p, re.DOTALL) for p in patterns))


# MQTT commands with a result URC (GEN-3: before or after OK).
MCONFIG = _with_result("MCONFIG")
MIPSTART = _with_result("MIPSTART")
MCONNECT = _with_result("MCONNECT")
MSUB = _with_result("MSUB")
MUNSUB = _with_result("MUNSUB")
MPUB = _with_result("MPUB")
MPUBEX = _with_result("MPUBEX", prompt=True)
MDISCONNECT = _with_result("MDISCONNECT")
MIPCLOSE = _with_result("MIPCLOSE")

# MQTT commands answered by OK/ERROR, some with information lines.
MQTTSSL = CommandSpec("MQTTSSL")
MQTTMSGSET = CommandSpec("MQTTMSGSET")
MQTTMSGGET = _with_info("MQTTMSGGET", rb"\+MSUB: ?.*?,\d+ bytes,", rb"\+ ?MQTTMSGGET: ?INVALID")
MQTTCEER = _with_info("MQTTCEER", rb"\+ ?MQTTCEER: ?\d")
MQTTSTATU = _with_info("MQTTSTATU", rb"\+ ?MQTTSTATU: ?\d")

# Bench commands: identity, SIM, registration, attach, functionality (DEV-1, DEV-2).
AT = PLAIN
ATE = CommandSpec("ATE")
ATI = CommandSpec("ATI", info=(_ANY_LINE,))
CGMR = CommandSpec("CGMR", info=(_ANY_LINE,))
CPIN_READ = _with_info("CPIN", rb"\+CPIN: ?")
CREG_READ = _with_info("CREG", rb"\+CREG: ?")
CEREG_READ = _with_info("CEREG", rb"\+CEREG: ?")
CGATT_READ = _with_info("CGATT", rb"\+CGATT: ?")
CGATT_SET = CommandSpec("CGATT")
CGDCONT_SET = CommandSpec("CGDCONT")
CFUN_READ = _with_info("CFUN", rb"\+CFUN: ?")
CFUN_SET = CommandSpec("CFUN")
