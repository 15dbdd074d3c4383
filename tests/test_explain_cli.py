"""The explain, stress and optimise commands: JSON output, and one error line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marginkernel.cli import main

DATA = Path(__file__).resolve().parents[1] / "python" / "marginkernel" / "data"
ARGS = [
    str(DATA / "demo_positions.csv"),
    "--instruments",
    str(DATA / "demo_instruments.csv"),
    "--market",
    str(DATA / "demo_market.toml"),
]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_explain_json_adds_up(capsys):
    code, out, _ = run(capsys, "explain", *ARGS, "--model", "okx-pm", "--json")
    assert code == 0
    data = json.loads(out)
    for acc in data["accounts"]:
        total = sum(p["contribution"] for p in data["positions"] if p["account"] == acc["account"])
        assert total == pytest.approx(acc["im"], rel=1e-9, abs=1e-6)
    code, out, _ = run(capsys, "explain", *ARGS, "--model", "okx-pm", "--json", "--account", "nobody")
    assert code == 0 and json.loads(out)["positions"] == []


def test_stress_and_optimise_json(capsys, tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text(
        '[[stress]]\nname = "crash"\nprice = { default = -0.3 }\n\n[directions.down]\nprice = { default = -1.0 }\n'
    )
    coll = tmp_path / "c.csv"
    coll.write_text("account,currency,amount\nnaked-short,USDC,500000\n")
    code, out, _ = run(
        capsys,
        "stress",
        *ARGS,
        "--model",
        "deribit-pm",
        "--scenarios",
        str(scen),
        "--collateral",
        str(coll),
        "--account",
        "naked-short",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["stress"][0]["stress"] == "crash" and data["reverse"][0]["scale"] > 0
    hedges = tmp_path / "h.csv"
    hedges.write_text(
        "instrument,min,max,cost\nBTC-PERPETUAL,-100000,100000,0.05\nETH-PERPETUAL,-1000000,1000000,0.005\n"
    )
    code, out, _ = run(
        capsys,
        "optimise",
        "hedge",
        *ARGS,
        "--model",
        "deribit-pm",
        "--hedges",
        str(hedges),
        "--account",
        "naked-short",
        "--json",
    )
    assert code == 0
    s = json.loads(out)["summary"]
    assert s["im_after"] + s["cost"] == pytest.approx(s["objective"], rel=1e-7)
    code, out, _ = run(capsys, "optimise", "allocate", *ARGS, "--model", "tims", "--account", "calendar", "--json")
    assert code == 0 and json.loads(out)["summary"]["im_after"] <= json.loads(out)["summary"]["im_before"] + 1e-6


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["optimise", "hedge", "--model", "deribit-pm", "--hedges", "HEDGES", "--account", "naked-short"],
            "unknown instrument 'X'",
        ),
        (
            [
                "optimise",
                "liquidate",
                "--model",
                "deribit-pm",
                "--costs",
                "HEDGES",
                "--target-ratio",
                "0.5",
                "--account",
                "naked-short",
            ],
            "collateral",
        ),
        (
            ["optimise", "hedge", "--model", "span", "--hedges", "HEDGES", "--account", "naked-short"],
            "addons.intra_spread",
        ),
        (["stress", "--model", "deribit-pm", "--historical", "0"], "--historical"),
        (["explain", "--model", "nope"], "neither a preset"),
    ],
)
def test_bad_input_is_one_line_and_status_2(capsys, tmp_path, argv, message):
    hedges = tmp_path / "h.csv"
    hedges.write_text("instrument,min,max,cost\nX,-1,1,0\n")
    argv = [str(hedges) if a == "HEDGES" else a for a in argv]
    code, _, err = run(
        capsys,
        argv[0],
        *([argv[1]] if argv[0] == "optimise" else []),
        *ARGS,
        *argv[2 if argv[0] == "optimise" else 1 :],
    )
    assert code == 2
    assert err.startswith("marginkernel: error:") and message in err and err.count("\n") == 1
