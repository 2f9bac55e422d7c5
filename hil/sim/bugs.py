"""Named firmware bugs the simulator can be built with, to measure what the suites catch.

Each is a realistic defect of an AT firmware, tied to the clause it breaks. `hil mutants`
runs the suites once per bug; a bug that no test notices is a hole in the suites.
"""

from __future__ import annotations

from types import MappingProxyType

BUGS: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {
        # name: (clause, what goes wrong)
        "unknown_command_ok": ("GEN-1", "an unknown command is answered OK instead of ERROR"),
        "ceer_code_off_by_one": ("GEN-4", "AT+MQTTCEER reports the failure code plus one"),
        "mconfig_no_result": ("MCONFIG-1", "MCONFIG answers OK without +MCONFIG: SUCCESS,0"),
        "password_dropped": ("MCONFIG-2", "the password is not sent in CONNECT"),
        "will_lost": ("MCONFIG-3", "the will is not sent in CONNECT"),
        "will_retain_ignored": ("MCONFIG-3", "the will's retain flag is always 0"),
        "bad_will_qos_accepted": ("MCONFIG-4", "will_qos 3 is accepted"),
        "msgset_deferred": (
            "FLOW-TCP",
            "AT+MQTTMSGSET while connected takes effect only at the next MCONNECT",
        ),
        "keepalive_fixed_60": ("MCONNECT-1", "CONNECT always carries a keep-alive of 60 s"),
        "mconnect_twice_code_2": (
            "MCONNECT-7",
            "MCONNECT while connected is reported as code 2",
        ),
        "mipstart_status_stays_0": ("MIPSTART-1", "MQTTSTATU stays 0 after MIPSTART"),
        "unreachable_code_6": ("MIPSTART-2", "an unreachable server is reported as code 6"),
        "flight_mode_ignored": ("MIPSTART-4", "MIPSTART connects with the network detached"),
        "socket_fail_code_5": ("MIPSTART-5", "a socket creation failure is reported as code 5"),
        "tls_fail_code_5": ("MIPSTART-6", "a TLS handshake failure is reported as code 5"),
        "no_idle_drop": ("MIPSTART-7", "an unused TCP connection is never dropped"),
        "clean_session_forced": ("MCONNECT-2", "CONNECT always has clean session set"),
        "no_keepalive_ping": ("MCONNECT-3", "no PINGREQ is ever sent"),
        "refused_code_5": ("MCONNECT-4", "a refused CONNECT is reported as code 5"),
        "silent_drop": ("MCONNECT-5", "a dropped connection is not reported"),
        "msub_bad_qos_accepted": ("MSUB-1", "MSUB with qos 3 is accepted"),
        "msub_len_off_by_one": ("MSUB-2", "the <len> of a report is one less"),
        "cut_at_1359": ("MSUB-3", "long incoming messages are cut to 1359 bytes"),
        "slots_from_1": ("MSUB-4", "manual mode announces slots 1-4"),
        "ring_no_wrap": ("MSUB-5", "the fifth stored message is dropped"),
        "store_survives_reboot": ("MSUB-6", "the message store survives a restart"),
        "munsub_noop": ("MUNSUB-1", "MUNSUB answers SUCCESS but does not unsubscribe"),
        "mpub_qos_downgraded": ("MPUB-1", "MPUB always publishes at QoS 0"),
        "mpub_topic_65_accepted": ("MPUB-2", "a 65-character MPUB topic is accepted"),
        "mpub_silent_cut": ("MPUB-3", "an over-long MPUB message is cut to 256 and sent"),
        "retain_ignored": ("MPUB-4", "MPUB retain=1 is sent as 0"),
        "qos2_sent_twice": ("MPUB-6", "a QoS 2 MPUB is published twice"),
        "mpubex_one_byte_short": ("MPUBEX-1", "MPUBEX publishes one byte less than given"),
        "mpubex_1361_accepted": ("MPUBEX-2", "MPUBEX with length 1361 is accepted"),
        "mpubex_every_8th_lost": ("MPUBEX-4", "every eighth MPUBEX is acknowledged but not sent"),
        "mdisconnect_no_packet": ("MDISCONNECT-1", "MDISCONNECT closes TCP without DISCONNECT"),
        "mipclose_status_stays": ("MIPCLOSE-1", "MQTTSTATU stays up after MIPCLOSE"),
        "mqttssl_accepts_2": ("MQTTSSL-1", "AT+MQTTSSL=2 is accepted"),
        "ssl_flag_ignored": ("FLOW-SSL", "MQTTSSL=1 is ignored: plain TCP is used"),
        "msgset_accepts_2": ("MSGSET-1", "AT+MQTTMSGSET=2 is accepted"),
        "msgget_wrong_slot": ("MSGGET-1", "MQTTMSGGET=n prints slot n+1"),
        "msgget_empty_silent": ("MSGGET-2", "an empty slot prints nothing"),
        "msgget_all_first_only": ("MSGGET-3", "MQTTMSGGET without n prints slot 0 only"),
        "ceer_always_0": ("CEER-1", "AT+MQTTCEER always answers 0"),
        "statu_stuck_after_drop": ("STATU-1", "MQTTSTATU stays 1 after the server drops"),
        "reset_no_reboot": ("DEV-1", "AT+CFUN=1,1 answers OK but does not restart"),
        "cgmr_empty": ("DEV-2", "AT+CGMR prints no revision"),
    }
)


#: Slow but compliant firmwares: no clause broken, so not for `hil mutants`; for checking
#: that firmware acceptance (docs/acceptance.md) rejects them.
SLOWDOWNS: MappingProxyType[str, str] = MappingProxyType(
    {"mconnect_result_late": "+MCONNECT: SUCCESS comes 3 s after the broker's CONNACK"}
)


# Fuzz-only bugs: parser and state-handling defects that no suite test targets, for measuring
# `hil fuzz` (docs/fuzz.md). `hil mutants` does not run them: the suites are not expected to
# catch them. name: (the fuzz oracle that should notice, what goes wrong)
FUZZ_BUGS: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {
        "quote_wedges_parser": (
            "final answer", "an unclosed quote makes CR part of the line: nothing answers"),
        "nonascii_msub_no_result": (
            "final answer", "MSUB with a non-ASCII byte answers OK but never its result"),
        "tab_restarts": ("no restart", "a TAB in a command line restarts the module"),
        "statu_from_ceer": (
            "MQTTSTATU", "with TCP up, MQTTSTATU says 1 when the last failure was type 2"),
        "mipclose_pending_keeps_socket": (
            "MQTTSTATU", "MIPCLOSE while a result is pending forgets the socket, still open"),
        "second_msub_drops_result": (
            "final answer", "an MSUB while another's result is pending: that result never comes"),
        "urc_lost_in_prompt": (
            "message lost", "a message arriving during the MPUBEX prompt is acked, not reported"),
        "empty_qos1_mpub_dropped": (
            "message lost", "MPUB of an empty message at QoS 1: SUCCESS, nothing published"),
    }
)


def check_bugs(names: frozenset[str]) -> frozenset[str]:
    unknown = sorted(names - BUGS.keys() - SLOWDOWNS.keys() - FUZZ_BUGS.keys())
    if unknown:
        raise ValueError(
            f"unknown simulator bug(s): {', '.join(unknown)}; see `hil mutants --list`"
        )
    return names
