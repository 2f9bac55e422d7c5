"""Per fuzz-only firmware bug, a minimal case that shows it and the oracle that must object
(shared by the fuzzer's tests on the virtual bench and through a port)."""

from __future__ import annotations

from hil.fuzz.grammar import Case, Command, Data, PeerPublish, command_name


def cmd(line: str, wait: bool = True) -> Command:
    return Command(command_name(line), line, wait=wait)


#: Per fuzz-only bug, a minimal case that shows it, and the oracle that must object.
SHOWN_BY: dict[str, tuple[Case, str]] = {
    "quote_wedges_parser": (Case("none", (cmd('AT+MCONFIG="c'),)), "final answer"),
    "nonascii_msub_no_result": (Case("none", (cmd("AT+MSUB=é,0"),)), "final answer"),
    "tab_restarts": (Case("none", (cmd("AT+MCONFIG=c\t1"),)), "no restart"),
    "statu_from_ceer": (Case("tcp", (cmd("AT+MCONFIG="),)), "MQTTSTATU"),
    "mipclose_pending_keeps_socket": (
        Case("tcp", (cmd("AT+MCONNECT=1,30", wait=False), cmd("AT+MIPCLOSE"))), "MQTTSTATU"),
    "second_msub_drops_result": (
        Case("mqtt", (cmd("AT+MSUB=a/b,0", wait=False), cmd("AT+MSUB=t,0"))),
        "final answer"),
    "urc_lost_in_prompt": (
        Case("subscribed", (cmd("AT+MPUBEX=t,0,0,2"), PeerPublish("a/b", "p"), Data("hi"))),
        "message lost"),
    "empty_qos1_mpub_dropped": (Case("mqtt", (cmd("AT+MPUB=a/b,1,0,"),)), "message lost"),
}
