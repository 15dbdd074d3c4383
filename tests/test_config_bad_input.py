"""Bad input in model files and positions files: a clear ValueError / TypeError naming the key or
the row (never a crash, never a traceback from the CLI), and inputs never modified."""

from __future__ import annotations

import copy
import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel.cli import main as cli_main
from marginkernel.demo import demo_inputs

BASE = '[model]\nname = "x"\n[scenarios]\nbuilder = "deribit_grid"\n'


def load(tmp_path, text: str):
    path = tmp_path / "model.toml"
    path.write_text(text)
    return mk.load_model(path)


@pytest.mark.parametrize(
    "text, message",
    [
        # unknown keys and sections
        ('[model]\nname = "x"\nmesure = "var"\n[scenarios]\nbuilder = "span16"\n', r"model\.mesure: unknown key"),
        (BASE + "price_rang = 0.1\n", r"scenarios\.price_rang: not a parameter of deribit_grid"),
        (BASE + "[extra]\na = 1\n", r"unknown section\(s\) \['extra'\]"),
        (BASE + "[collateral]\nhair = 0.1\n", r"collateral\.hair: unknown key"),
        (BASE + "[addons.roll_shock]\ncolor = 1\n", r"addons\.roll_shock\.color: unknown key"),
        (
            BASE + '[addons.intra_spread]\nspreads = [{rate = 1.0, legs = [{tier = 1, side = "A", size = 2}, '
            '{tier = 2, side = "B"}]}]\n',
            r"addons\.intra_spread\.spreads\[0\]\.legs\[0\]\.size: unknown key",
        ),
        # wrong types
        (
            '[model]\nname = "x"\nim_factor = "high"\n[scenarios]\nbuilder = "span16"\n',
            r"model\.im_factor: expected float",
        ),
        ('[model]\nname = 3\n[scenarios]\nbuilder = "span16"\n', r"model\.name: expected str"),
        (BASE + 'steps = "4"\n', r"scenarios\.steps: expected an integer"),
        (BASE + "steps = 4.5\n", r"scenarios\.steps: expected an integer"),
        (BASE + 'extended_moves = "big"\n', r"scenarios\.extended_moves: expected an array of numbers"),
        (BASE + 'price_range = { BTC = "wide" }\n', r"scenarios\.price_range\.BTC: expected a number"),
        (BASE + 'extended_options_only = "yes"\n', r"scenarios\.extended_options_only: expected true or false"),
        (BASE + '[addons.delta_shock]\nshock = "x"\n', r"addons\.delta_shock\.shock: expected a number"),
        (BASE + '[addons.roll_shock]\nkinds = "future"\n', r"addons\.roll_shock\.kinds: expected an array"),
        ("addons = 5\n" + BASE, r"addons: expected tables"),
        (BASE + '[collateral]\nhaircut = "none"\n', r"collateral\.haircut: expected a number"),
        # out of range
        (
            '[model]\nname = "x"\nmm_factor = -1\n[scenarios]\nbuilder = "span16"\n',
            r"model\.mm_factor: must be finite and >= 0",
        ),
        (
            '[model]\nname = "x"\nconfidence = 1.5\n[scenarios]\nbuilder = "span16"\n',
            r"model\.confidence: must be in \(0, 1\)",
        ),
        (
            '[model]\nname = "x"\ngain_factor = 1.5\n[scenarios]\nbuilder = "span16"\n',
            r"model\.gain_factor: must be <= 1\.0",
        ),
        (
            '[model]\nname = "x"\ngain_cap = -5.0\n[scenarios]\nbuilder = "span16"\n',
            r"model\.gain_cap: must be >= 0\.0",
        ),
        (
            '[model]\nname = "x"\nnetting = "galaxy"\n[scenarios]\nbuilder = "span16"\n',
            r"model\.netting: must be one of",
        ),
        ('[model]\nname = "x"\nmode = "solo"\n[scenarios]\nbuilder = "span16"\n', r"model\.mode: must be one of"),
        (BASE + "price_range = 1.5\n", r"scenarios\.price_range: must be in \(0, 1\)"),
        (BASE + "vol_down = -0.25\n", r"scenarios\.vol_down: must be >= 0"),
        (
            '[model]\nname = "x"\n[scenarios]\nbuilder = "span16"\ncover_fraction = 2.0\n',
            r"scenarios\.cover_fraction: must be in \[0, 1\]",
        ),
        (
            '[model]\nname = "x"\n[scenarios]\nbuilder = "range_points"\npoints = 7\n',
            r"scenarios\.points: must be an even number",
        ),
        (BASE + "[collateral]\nhaircut = { BTC = 2.0 }\n", r"collateral\.haircut\.BTC: must be <= 1\.0"),
        (
            BASE + "[addons.roll_shock]\nmin_annualised_move = -0.1\n",
            r"addons\.roll_shock\.min_annualised_move: must be >= 0\.0",
        ),
        (BASE + '[addons.roll_shock]\nkinds = ["swap"]\n', r"addons\.roll_shock\.kinds\[0\]: must be one of"),
        (
            BASE + "[addons.concentration]\ntiers = [[5, 0.1], [1, 0.2]]\n",
            r"addons\.concentration\.tiers\[1\]\[0\]: starts must increase",
        ),
        (
            BASE + '[addons.inter_spread]\nspreads = [{rate = 1.5, legs = [{unit = "BTC", side = "A"}, '
            '{unit = "ETH", side = "B"}]}]\n',
            r"addons\.inter_spread\.spreads\[0\]\.rate: must be <= 1\.0",
        ),
        # unknown builder / add-on, missing pieces, bad references
        ('[model]\nname = "x"\n[scenarios]\nbuilder = "montecarlo"\n', r"scenarios\.builder: must be one of"),
        (BASE + "[addons.magic]\nrate = 1\n", r"addons\.magic\.type: unknown add-on 'magic'"),
        (BASE + '[addons.x]\ntype = "vega_shock"\n', r"addons\.x\.type: unknown add-on 'vega_shock'"),
        (BASE + "[addons.delta_shock]\nthreshold = 1.0\n", r"addons\.delta_shock\.shock: missing"),
        (BASE + '[addons.im]\ntype = "roll_shock"\n', r"addons\.im: the name 'im' is reserved"),
        (
            BASE
            + '[addons.inter_spread]\nafter = "intra"\nspreads = [{rate = 0.5, legs = [{unit = "BTC", side = "A"}, '
            '{unit = "ETH", side = "B"}]}]\n',
            r"addons\.inter_spread\.after: 'intra' is not an intra_spread add-on",
        ),
        ('[model]\ndescription = "no name"\n[scenarios]\nbuilder = "span16"\n', r"model\.name: missing"),
        ('[model]\nname = "x"\n', r"scenarios\.builder: missing"),
        ('[scenarios]\nbuilder = "span16"\n', r"model: missing \[model\] section"),
        # not TOML
        ('[model\nname = "x"\n', r"not valid TOML"),
        ('[model]\nname = "x"\nname = "y"\n', r"not valid TOML"),
    ],
)
def test_bad_model_files_name_the_key(tmp_path, text, message):
    with pytest.raises(ValueError, match=message) as info:
        load(tmp_path, text)
    assert "model.toml" in str(info.value)  # and the file


def test_toml_dates_and_inf_are_accepted(tmp_path):
    m = load(tmp_path, '[model]\nname = "x"\nas_of = 2024-06-17\ngain_cap = inf\n[scenarios]\nbuilder = "span16"\n')
    assert m.as_of == "2024-06-17" and m.gain_cap == float("inf")


def test_missing_model_and_directory(tmp_path):
    with pytest.raises(ValueError, match="neither a preset"):
        mk.load_model(tmp_path / "nope.toml")
    with pytest.raises(ValueError, match="neither a preset"):
        mk.load_model(tmp_path)
    with pytest.raises(TypeError, match="expected a preset name or a path"):
        mk.load_model(42)


def test_from_dict_does_not_modify_its_input():
    data = {
        "model": {"name": "x", "gain_factor": {"default": 1.0, "BTC": 0.5}},
        "scenarios": {"builder": "span16", "price_scan": {"default": 0.1}},
        "addons": {
            "intra_spread": {"spreads": [{"rate": 1.0, "legs": [{"tier": 1, "side": "A"}, {"tier": 2, "side": "B"}]}]},
            "roll_shock": {"kinds": ["future"]},
        },
    }
    before = copy.deepcopy(data)
    mk.MarginModel.from_dict(data)
    assert data == before


def test_addon_value_missing_for_a_unit_fails_at_engine_construction():
    inst, mkt, _ = demo_inputs()
    model = mk.MarginModel.from_dict(
        {"model": {"name": "x"}, "scenarios": {"builder": "span16"}, "addons": {"delta_shock": {"shock": {"BTC": 0.1}}}}
    )
    with pytest.raises(
        ValueError,
        match=r"addons\.delta_shock\.shock: no value for risk unit 'BTC/USDC'.*'ETH'|"
        r"addons\.delta_shock\.shock: no value for risk unit 'ETH'",
    ):
        mk.Engine(inst, mkt, model)


# --- positions files, through the CLI ------------------------------------------------------------


@pytest.fixture()
def files(tmp_path):
    inst, _, positions = demo_inputs()
    inst.to_frame().assign(expiry=lambda f: f["expiry"].astype(str).replace("NaT", "")).to_csv(
        tmp_path / "inst.csv", index=False
    )
    positions.to_csv(tmp_path / "pos.csv", index=False)
    (tmp_path / "mkt.toml").write_bytes((resources.files("marginkernel") / "data" / "demo_market.toml").read_bytes())
    return tmp_path


def run(files, positions_text: str | None = None, *extra, positions="bad.csv"):
    if positions_text is not None:
        (files / positions).write_text(positions_text)
    return cli_main(
        [
            "margin",
            str(files / positions),
            "--model",
            "deribit-pm",
            "--instruments",
            str(files / "inst.csv"),
            "--market",
            str(files / "mkt.toml"),
            *extra,
        ]
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("account,instrument\na,BTC-PERPETUAL\n", r"positions: missing column\(s\) \['quantity'\]"),
        (
            "account,instrument,quantity\na,BTC-PERPETUAL,1\na,ETH-PERPETUAL,2\nb,XRP-PERPETUAL,3\n",
            r"positions row 2: unknown instrument 'XRP-PERPETUAL'",
        ),
        (
            "account,instrument,quantity\na,BTC-PERPETUAL,1\na,ETH-PERPETUAL,\n",
            r"positions row 1: quantity must be finite, got nan",
        ),
        (
            "account,instrument,quantity\na,BTC-PERPETUAL,1\na,ETH-PERPETUAL,ten\n",
            r"positions\.quantity: must be numeric; row 1 has 'ten'",
        ),
        ("account,instrument,quantity\na,BTC-PERPETUAL,inf\n", r"positions row 0: quantity must be finite, got inf"),
        ("account,instrument,quantity\n,BTC-PERPETUAL,1\n", r"positions row 0: missing account"),
        (
            "account,instrument,quantity,margin_mode\na,BTC-PERPETUAL,1,solo\n",
            r"positions row 0: margin_mode must be 'cross' or 'isolated', got 'solo'",
        ),
        (
            "account,instrument,quantity,unrealised_pnl\na,BTC-PERPETUAL,1,lots\n",
            r"positions\.unrealised_pnl: must be numeric; row 0 has 'lots'",
        ),
        ("", r"bad\.csv: cannot read the positions"),
    ],
)
def test_bad_positions_files_name_the_row(files, capsys, text, message):
    assert run(files, text) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert err.startswith("marginkernel: error:") and "Traceback" not in err
    import re

    assert re.search(message, err), err


def test_cli_file_errors_are_clean(files, capsys):
    assert run(files, None, positions="missing.csv") == 2
    assert "missing.csv: file not found" in capsys.readouterr().err
    (files / "pos.json").write_text("{}")
    assert run(files, None, positions="pos.json") == 2
    assert "expected a .csv or .parquet file" in capsys.readouterr().err
    (files / "m.toml").write_text("[model]\nname = 'x'\nim_factor = 'a'\n[scenarios]\nbuilder = 'span16'\n")
    args = [
        "margin",
        str(files / "pos.csv"),
        "--model",
        str(files / "m.toml"),
        "--instruments",
        str(files / "inst.csv"),
        "--market",
        str(files / "mkt.toml"),
    ]
    assert cli_main(args) == 2
    assert "model.im_factor: expected float" in capsys.readouterr().err
    assert cli_main(args[:3] + ["derive-pm2"] + args[4:]) == 2
    assert "not a scenario-grid model" in capsys.readouterr().err
    (files / "coll.csv").write_text("account,currency,amount\na,BTC,x\n")
    assert run(files, None, "--collateral", str(files / "coll.csv"), positions="pos.csv") == 2
    assert "collateral row 0: amount: must be a number" in capsys.readouterr().err
    (files / "inst_bad.csv").write_text("id,kind,underlying\nX,swap,BTC\n")
    args = [
        "margin",
        str(files / "pos.csv"),
        "--model",
        "deribit-pm",
        "--instruments",
        str(files / "inst_bad.csv"),
        "--market",
        str(files / "mkt.toml"),
    ]
    assert cli_main(args) == 2
    assert "instrument 'X' (row 0): field 'kind'" in capsys.readouterr().err


def test_cli_collateral_components_and_json(files, capsys):
    (files / "coll.toml").write_text("[naked-short]\nBTC = 5.0\nUSDC = 1000.0\n[calendar]\nBTC = 1.0\n")
    assert run(files, None, "--collateral", str(files / "coll.toml"), "--json", positions="pos.csv") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["components"] == ["roll_shock", "delta_shock"] and data["currency"] == "USD"
    acc = {a["account"]: a for a in data["accounts"]}
    assert acc["calendar"]["equity"] == pytest.approx(98_000.0, rel=1e-12)  # 1 BTC, no haircut
    assert acc["naked-short"]["liquidation"] is True  # 5 BTC + 1,000 USDC against ~$650k MM
    assert acc["calendar"]["liquidation"] is False
    # no collateral: zero equity, an infinite ratio; JSON has no inf: null plus a flag (docs/cli.md, issue 12.6)
    assert acc["long-straddle"]["margin_ratio"] is None and acc["long-straddle"]["infinite"] == {"margin_ratio": 1}
    for a in acc.values():
        assert a["risk"] == pytest.approx(a["scan_risk"] + a["roll_shock"] + a["delta_shock"], rel=1e-12)
    assert run(files, None, "--collateral", str(files / "coll.toml"), "--mode", "isolated", positions="pos.csv") == 0
    out = capsys.readouterr().out
    assert "isolated" in out and "liquidation" in out and "roll_shock" in out


def test_cli_reads_parquet(files, capsys):
    pytest.importorskip("pyarrow")
    pd.read_csv(files / "pos.csv").to_parquet(files / "pos.parquet")
    assert run(files, None, "--json", positions="pos.parquet") == 0
    assert len(json.loads(capsys.readouterr().out)["accounts"]) == 6


def test_engine_inputs_are_not_modified():
    inst, mkt, positions = demo_inputs()
    positions = positions.assign(margin_mode=["cross", "isolated"] * 6, unrealised_pnl=np.linspace(-0.1, 0.1, 12))
    collateral = pd.DataFrame({"account": ["calendar"], "currency": ["BTC"], "amount": [1.0]})
    before = (positions.copy(deep=True), collateral.copy(deep=True), inst.to_frame())
    mk.Engine(inst, mkt, mk.load_model("span")).margin(positions, collateral=collateral)
    pd.testing.assert_frame_equal(positions, before[0])
    pd.testing.assert_frame_equal(collateral, before[1])
    pd.testing.assert_frame_equal(inst.to_frame(), before[2])
