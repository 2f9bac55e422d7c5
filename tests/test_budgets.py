"""Response budgets: documented defaults, rig overrides, modes, the check itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.fixtures.timing import budgets_of
from hil.report.budgets import (
    DEFAULT_BUDGETS_MS,
    OTHER,
    BudgetError,
    Budgets,
    Violation,
    parse_override,
)
from hil.rig import load_rig, rig_from_dict

ROOT = Path(__file__).resolve().parent.parent




def test_defaults_cover_every_command_of_the_guide_and_the_rest() -> None:
    guide = {"MCONFIG", "MIPSTART", "MCONNECT", "MSUB", "MUNSUB", "MPUB", "MPUBEX",
             "MDISCONNECT", "MIPCLOSE", "MQTTSSL", "MQTTMSGSET", "MQTTMSGGET", "MQTTCEER",
             "MQTTSTATU"}
    assert guide <= set(DEFAULT_BUDGETS_MS)
    assert OTHER in DEFAULT_BUDGETS_MS
    assert all(ms > 0 for ms in DEFAULT_BUDGETS_MS.values())


def test_every_default_is_explained_in_the_docstring() -> None:
    import hil.report.budgets as module

    doc = module.__doc__ or ""
    for name in DEFAULT_BUDGETS_MS:
        shown = name.rstrip("?")
        assert shown in doc or name == OTHER, f"{name} has no word about where it comes from"


def test_lookup_is_exact_then_the_catch_all() -> None:
    b = Budgets()
    assert b.mode == "fail"
    assert b.budget_for("MPUBEX") == DEFAULT_BUDGETS_MS["MPUBEX"]
    assert b.budget_for("mpubex") == DEFAULT_BUDGETS_MS["MPUBEX"]
    assert b.budget_for("CGATT?") == 300 and b.budget_for("CGATT") == 10000
    assert b.budget_for("AT+NEVERHEARD") == DEFAULT_BUDGETS_MS[OTHER]


def test_overrides_go_on_top_of_the_defaults() -> None:
    b = Budgets.from_mapping({"MPUB": 250, "at": 50.5, "*": 2000}, "warn")
    assert (b.budget_for("MPUB"), b.budget_for("AT"), b.budget_for("XYZ")) == (250, 50.5, 2000)
    assert b.budget_for("MSUB") == DEFAULT_BUDGETS_MS["MSUB"]
    assert b.mode == "warn"
    off = b.overridden({"MPUB": None})
    assert off.budget_for("MPUB") is None and off.mode == "warn"
    assert off.check("MPUB", 1e9) is None
    assert b.budget_for("MPUB") == 250  # the original is unchanged


@pytest.mark.parametrize("bad", [0, -1, "fast", True])
def test_a_budget_must_be_a_positive_number(bad: object) -> None:
    with pytest.raises(BudgetError, match="positive number of milliseconds"):
        Budgets.from_mapping({"MPUB": bad})


def test_mode_is_fail_or_warn() -> None:
    with pytest.raises(BudgetError, match="must be one of fail, warn"):
        Budgets.from_mapping({}, "strict")


def test_check_gives_the_figure_and_the_budget() -> None:
    b = Budgets.from_mapping({"MSUB": 100})
    assert b.check("MSUB", 99.9) is None
    assert b.check("MSUB", 100.0) is None
    assert b.check("MSUB", None) is None
    v = b.check("MSUB", 123.45, text="AT+MSUB=t,1", test="suite::test")
    assert v == Violation("MSUB", "AT+MSUB=t,1", 123.45, 100.0, "suite::test")
    assert v.message() == "'AT+MSUB=t,1' (MSUB) answered in 123.5 ms, over its budget of 100 ms"


def test_from_a_rig_object() -> None:
    rig = rig_from_dict({"name": "bench", "dut": {"kind": "simulator"},
                         "budgets": {"MPUB": 250}, "budget_mode": "fail"})
    b = budgets_of(rig)
    assert (b.budget_for("MPUB"), b.mode, b.source) == (250, "fail", "rig bench")


def test_from_a_rig_file_with_the_mode_at_the_top(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\nbudget_mode = "warn"\n[dut]\nkind = "simulator"\n'
                    '[budgets]\nMPUBEX = 800\n"CGATT?" = 50\n')
    b = budgets_of(load_rig(path))
    assert (b.mode, b.budget_for("MPUBEX"), b.budget_for("CGATT?")) == ("warn", 800, 50)


def test_every_example_rig_gives_budgets() -> None:
    for path in sorted((ROOT / "rigs").glob("*.toml")):
        rig = load_rig(path)
        b = budgets_of(rig)
        assert b.mode == rig.budget_mode
        for name, ms in rig.budgets.items():
            assert b.budget_for(name) == ms


def test_command_line_override() -> None:
    assert parse_override("MPUBEX=500") == ("MPUBEX", 500.0)
    assert parse_override(" CGATT? = 20 ") == ("CGATT?", 20.0)
    assert parse_override("MPUB=off") == ("MPUB", None)
    for bad in ("MPUBEX", "=5", "MPUB=-1", "MPUB=fast"):
        with pytest.raises(BudgetError):
            parse_override(bad)


def test_as_dict_is_sorted_and_complete() -> None:
    d = Budgets.from_mapping({"MPUB": 1}).as_dict()
    assert d["mode"] == "fail" and d["budgets_ms"]["MPUB"] == 1
    assert list(d["budgets_ms"]) == sorted(d["budgets_ms"])
