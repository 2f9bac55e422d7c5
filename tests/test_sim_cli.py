"""`hil sim`'s options: the profile and latency model the firmware is built with."""

from __future__ import annotations

import argparse

import pytest

from hil.cli.sim import add_arguments, config_from
from hil.sim.profiles import GUIDE_ALT


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hil sim")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_profile_guide_alt_with_its_link_model() -> None:
    firmware, config = config_from(parse("--profile", "guide-alt", "--tcp", "0"))
    assert firmware.profile == GUIDE_ALT
    assert firmware.profile.link_rtt_s > 0 and config.transport == "tcp"


def test_no_latency_takes_the_link_out_too() -> None:
    firmware, _ = config_from(parse("--profile", "guide-alt", "--no-latency"))
    profile = firmware.profile
    assert (profile.link_rtt_s, profile.link_jitter_s, dict(profile.latency)) == (0.0, 0.0, {})
    assert profile.prompt == GUIDE_ALT.prompt  # only the latency changed


def test_unknown_profile_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--profile", "v9")
    assert "guide-alt" in capsys.readouterr().err
