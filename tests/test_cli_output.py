"""What ``marginkernel margin`` writes (issue 12.6, 12.3 CLI side): totals, --sort/--top, percentages,
standard JSON with numbers as numbers, --output CSV / Parquet, Dask options."""

from __future__ import annotations

import json
import math
import os
from importlib import resources

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel.cli import main as cli_main
from marginkernel.demo import demo_inputs


@pytest.fixture()
def files(tmp_path):
    inst, _, positions = demo_inputs()
    inst.to_frame().assign(expiry=lambda f: f["expiry"].astype(str).replace("NaT", "")).to_csv(
        tmp_path / "inst.csv", index=False
    )
    positions.to_csv(tmp_path / "pos.csv", index=False)
    (tmp_path / "mkt.toml").write_bytes((resources.files("marginkernel") / "data" / "demo_market.toml").read_bytes())
    (tmp_path / "coll.toml").write_text(
        "[naked-short]\nBTC = 5.0\nUSDC = 1000.0\n[calendar]\nBTC = 1.0\n[perp-basis]\nUSDC = 100000.0\n"
    )
    return tmp_path


def run(files, *extra, capsys=None):
    code = cli_main(
        [
            "margin",
            str(files / "pos.csv"),
            "--model",
            "deribit-pm",
            "--instruments",
            str(files / "inst.csv"),
            "--market",
            str(files / "mkt.toml"),
            "--quiet",
            *extra,
        ]
    )
    return code


def expected(files, collateral=True) -> mk.MarginResult:
    inst, mkt, positions = demo_inputs()
    coll = {"naked-short": {"BTC": 5.0, "USDC": 1000.0}, "calendar": {"BTC": 1.0}, "perp-basis": {"USDC": 100000.0}}
    return mk.Engine(inst, mkt, mk.load_model("deribit-pm")).margin(positions, collateral=coll if collateral else None)


def strict_json(text: str):
    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constants)


def test_json_numbers_totals_and_infinities(files, capsys):
    assert run(files, "--collateral", str(files / "coll.toml"), "--json") == 0
    data = strict_json(capsys.readouterr().out)
    want = expected(files)
    assert data["n_accounts"] == 6 and [a["account"] for a in data["accounts"]] == list(want.accounts.index)
    for acc in data["accounts"]:
        row = want.accounts.loc[acc["account"]]
        for col in ["im", "mm", "risk", "scan_risk", "roll_shock", "delta_shock", "equity", "available"]:
            assert type(acc[col]) is float and acc[col] == row[col]  # round-trip exact, never a string
        if math.isinf(row["margin_ratio"]):
            assert acc["margin_ratio"] is None and acc["infinite"] == {"margin_ratio": 1}
        else:
            assert acc["margin_ratio"] == row["margin_ratio"] and "infinite" not in acc
        assert acc["liquidation"] is bool(row["liquidation"])
    tot = data["totals"]
    assert tot["im"] == pytest.approx(want.accounts["im"].sum(), rel=1e-15)
    assert tot["margin_ratio"] == pytest.approx(want.accounts["mm"].sum() / want.accounts["equity"].sum(), rel=1e-15)
    assert tot["liquidation"] == int(want.accounts["liquidation"].sum())
    assert len(data["by_unit"]) == len(want.by_unit)
    assert all(isinstance(r["loss"], float) for r in data["by_unit"])


def test_json_without_collateral_has_nulls_not_nan(files, capsys):
    assert run(files, "--json") == 0
    data = strict_json(capsys.readouterr().out)
    assert all(a["equity"] is None and a["margin_ratio"] is None and a["liquidation"] is None for a in data["accounts"])
    assert data["totals"]["equity"] is None and data["totals"]["margin_ratio"] is None


def test_text_totals_and_percentages(files, capsys):
    assert run(files, "--collateral", str(files / "coll.toml")) == 0
    out = capsys.readouterr().out
    want = expected(files)
    total_line = next(line for line in out.splitlines() if line.startswith("TOTAL"))
    assert f"{want.accounts['im'].sum():,.2f}" in total_line and f"{want.accounts['mm'].sum():,.2f}" in total_line
    ratio = want.accounts.loc["naked-short", "margin_ratio"]
    assert f"{ratio:.2%}" in out and "inf" in out  # zero equity against a positive MM
    assert "2 accounts" in total_line or f"{int(want.accounts['liquidation'].sum())} accounts" in total_line


@pytest.mark.parametrize(
    "extra, order",
    [
        (["--sort", "im"], "im-desc"),
        (["--sort", "im", "--reverse"], "im-asc"),
        (["--top", "3"], "im-desc-3"),
        (["--sort", "account", "--top", "2"], "name-2"),
    ],
)
def test_sort_and_top(files, capsys, extra, order):
    assert run(files, "--json", *extra) == 0
    names = [a["account"] for a in strict_json(capsys.readouterr().out)["accounts"]]
    im = expected(files, collateral=False).accounts["im"]
    by_im = list(im.sort_values(ascending=False).index)
    want = {"im-desc": by_im, "im-asc": by_im[::-1], "im-desc-3": by_im[:3], "name-2": sorted(im.index)[:2]}[order]
    assert names == want


def test_top_in_text_keeps_totals_over_every_account(files, capsys):
    assert run(files, "--top", "1") == 0
    out = capsys.readouterr().out
    im = expected(files, collateral=False).accounts["im"]
    assert "1 of 6 accounts shown" in out and "naked-short" in out and "calendar" not in out
    assert f"{im.sum():,.2f}" in next(line for line in out.splitlines() if line.startswith("TOTAL"))


def test_unknown_sort_column_is_one_line(files, capsys):
    assert run(files, "--sort", "nope") == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("marginkernel: error: --sort: unknown column 'nope'; one of account, im")
        and err.count("\n") == 1
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_output_file_round_trips(files, capsys, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    out = files / f"result{suffix}"
    assert run(files, "--collateral", str(files / "coll.toml"), "--output", str(out)) == 0
    assert f"wrote 6 accounts to {out}" in capsys.readouterr().out
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in files.iterdir() if p.name.startswith(".marginkernel-")] == []  # no temporary left
    want = expected(files).accounts
    assert list(frame["account"]) == list(want.index)
    for col in ["im", "mm", "equity", "available", "margin_ratio"]:
        np.testing.assert_array_equal(frame[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float))
    assert list(frame["liquidation"].astype(bool)) == list(want["liquidation"].astype(bool))


def test_output_refuses_bad_names(files, capsys, tmp_path):
    assert run(files, "--output", str(files / "r.xlsx")) == 2
    assert "expected a .csv or .parquet file name" in capsys.readouterr().err
    (files / "d.csv").mkdir()
    assert run(files, "--output", str(files / "d.csv")) == 2
    assert "exists and is not a regular file" in capsys.readouterr().err
    assert run(files, "--output", str(files / "no" / "r.csv")) == 2
    assert "does not exist" in capsys.readouterr().err


def test_partitions_timings_and_workers_agree(files, capsys):
    assert run(files, "--json") == 0
    plain = capsys.readouterr().out
    assert run(files, "--json", "--partitions", "4", "--timings") == 0
    captured = capsys.readouterr()
    assert captured.out == plain
    assert captured.err.startswith("marginkernel: timings: read") and "margin" in captured.err
    pytest.importorskip("distributed")
    assert run(files, "--json", "--workers", "1", "--partitions", "3") == 0  # a LocalCluster of one process
    assert capsys.readouterr().out == plain


def test_workers_and_scheduler_are_exclusive(files, capsys):
    assert run(files, "--workers", "1", "--scheduler", "tcp://127.0.0.1:1") == 2
    assert "give one of them" in capsys.readouterr().err


def test_a_mistyped_worker_count_starts_no_process(files, capsys):
    """More than 4 workers per core is refused before any process starts (one line, status 2)."""
    pytest.importorskip("distributed")
    from marginkernel.distributed import max_local_workers

    assert run(files, "--workers", "100000") == 2
    limit = max_local_workers()
    err = capsys.readouterr().err
    assert err == f"marginkernel: error: --workers: at most {limit} (4 per core) on this machine, got 100000\n"


def test_scheduler_address(files, capsys):
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    assert run(files, "--json") == 0
    plain = capsys.readouterr().out
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert run(files, "--json", "--scheduler", cluster.scheduler_address) == 0
    assert capsys.readouterr().out == plain
