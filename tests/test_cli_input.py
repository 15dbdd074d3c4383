"""The CLI's input files (issue 9, items 2d and 2h): ids read as strings, strict CSV shape, regular-file
checks and size limits, one clean error line and exit status 2 for everything a user can get wrong."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from importlib import resources

import pandas as pd
import pytest

from marginkernel.cli import _io
from marginkernel.cli import main as cli_main
from marginkernel.demo import demo_inputs

PUT = "BTC-27DEC26-90000-P"


@pytest.fixture()
def files(tmp_path):
    inst, _, positions = demo_inputs()
    inst.to_frame().assign(expiry=lambda f: f["expiry"].astype(str).replace("NaT", "")).to_csv(
        tmp_path / "inst.csv", index=False
    )
    positions.to_csv(tmp_path / "pos.csv", index=False)
    (tmp_path / "mkt.toml").write_bytes((resources.files("marginkernel") / "data" / "demo_market.toml").read_bytes())
    return tmp_path


def margin(files, positions="pos.csv", *extra, instruments="inst.csv", market="mkt.toml"):
    return cli_main(
        [
            "margin",
            str(files / positions),
            "--model",
            "deribit-pm",
            "--instruments",
            str(files / instruments),
            "--market",
            str(files / market),
            "--quiet",
            *extra,
        ]
    )


def margin_json(files, capsys, text, **kw):
    (files / "p.csv").write_text(text)
    assert margin(files, "p.csv", "--json", **kw) == 0, capsys.readouterr().err
    return {a["account"]: a for a in json.loads(capsys.readouterr().out)["accounts"]}


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("marginkernel: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert captured.out == ""
    return err


# --- 9.2d: ids are strings ------------------------------------------------------------------------


def test_leading_zero_and_decimal_account_ids_stay_distinct(files, capsys):
    alone = margin_json(files, capsys, f"account,instrument,quantity\na,{PUT},-20\n")["a"]["im"]
    assert alone > 100_000
    got = margin_json(
        files, capsys, f"account,instrument,quantity\n001,{PUT},-20\n1,{PUT},-20\n1.0,{PUT},-20\n01.0,{PUT},-20\n"
    )
    assert sorted(got) == ["001", "01.0", "1", "1.0"]
    for acc in got.values():  # each holds one short put, none netted with another
        assert acc["im"] == alone


def test_na_and_null_ids_are_names(files, capsys):
    got = margin_json(files, capsys, f"account,instrument,quantity\nNA,{PUT},-20\nnull,{PUT},-10\nNone,{PUT},-5\n")
    assert sorted(got) == ["NA", "None", "null"]
    assert got["NA"]["im"] > got["null"]["im"] > got["None"]["im"] > 0


def test_an_empty_account_cell_is_missing(files, capsys):
    (files / "p.csv").write_text(f"account,instrument,quantity\na,{PUT},-1\n,{PUT},-20\n")
    assert margin(files, "p.csv") == 2
    assert "positions row 1: missing account" in one_error_line(capsys)


def test_numeric_instrument_ids(files, capsys):
    frame = pd.read_csv(files / "inst.csv")
    frame.loc[frame["id"] == PUT, "id"] = "90000"
    frame.loc[frame["id"] == "BTC-PERPETUAL", "id"] = "007"
    frame.to_csv(files / "inst_num.csv", index=False)
    (files / "mkt_num.toml").write_text(
        (files / "mkt.toml").read_text().replace(PUT, "90000").replace("BTC-PERPETUAL =", '"007" =')
    )
    (files / "p.csv").write_text(f"account,instrument,quantity\na,{PUT},-20\nb,BTC-PERPETUAL,5\n")
    assert margin(files, "p.csv", "--json") == 0
    named = {a["account"]: a["im"] for a in json.loads(capsys.readouterr().out)["accounts"]}
    got = margin_json(
        files,
        capsys,
        "account,instrument,quantity\na,90000,-20\nb,007,5\n",
        instruments="inst_num.csv",
        market="mkt_num.toml",
    )
    assert got["a"]["im"] == named["a"] and got["b"]["im"] == named["b"]
    (files / "p.csv").write_text("account,instrument,quantity\nb,7,5\n")  # 7 is not 007
    assert margin(files, "p.csv", instruments="inst_num.csv", market="mkt_num.toml") == 2
    assert "unknown instrument '7'" in one_error_line(capsys)


def test_duplicate_header_is_refused(files, capsys):
    (files / "p.csv").write_text(f"account,instrument,quantity,quantity\na,{PUT},-20,5\n")
    assert margin(files, "p.csv") == 2
    assert "column 'quantity' appears more than once in the header" in one_error_line(capsys)


@pytest.mark.parametrize(
    "text, line, fields",
    [
        (f"account,instrument,quantity\na,{PUT},-20\nb,{PUT},-20,7\n", 3, 4),  # one row too wide
        (f"account,instrument,quantity\nx,a,{PUT},-20\nx,b,{PUT},-20\n", 2, 4),  # every row too wide: no index shift
        (f"account,instrument,quantity\na,{PUT},-20\nb,{PUT}\n", 3, 2),  # one row too short
        (
            f"account,instrument,quantity\r\na,{PUT},-20\r\n\r\nb,{PUT},-20,7",
            4,
            4,
        ),  # CRLF, blank line, no final newline
        (f'account,instrument,quantity\n"a",{PUT},-20\n"b,c",{PUT}\n', 3, 2),  # quoted fields: the csv module counts
    ],
)
def test_ragged_rows_are_refused(files, capsys, text, line, fields):
    (files / "p.csv").write_text(text)
    assert margin(files, "p.csv") == 2
    assert f"p.csv line {line}: expected 3 fields as in the header, got {fields}" in one_error_line(capsys)


def test_blank_lines_and_quoted_commas_are_fine(files, capsys):
    got = margin_json(files, capsys, f'account,instrument,quantity\n"desk, one",{PUT},-20\n\n"desk, two",{PUT},-2\n\n')
    assert sorted(got) == ["desk, one", "desk, two"]


def test_collateral_csv_account_ids_are_strings(files, capsys):
    (files / "c.csv").write_text("account,currency,amount\n001,BTC,10\n")
    got = margin_json(files, capsys, f"account,instrument,quantity\n001,{PUT},-20\n1,{PUT},-20\n")
    assert got["001"]["equity"] is None
    (files / "p.csv").write_text(f"account,instrument,quantity\n001,{PUT},-20\n1,{PUT},-20\n")
    assert margin(files, "p.csv", "--json", "--collateral", str(files / "c.csv")) == 0
    acc = {a["account"]: a for a in json.loads(capsys.readouterr().out)["accounts"]}
    assert acc["001"]["equity"] > 0 and acc["1"]["equity"] == 0.0


def test_parquet_ids(files, capsys):
    pytest.importorskip("pyarrow")
    pd.DataFrame({"account": [1, 2], "instrument": [PUT, PUT], "quantity": [-20.0, -20.0]}).to_parquet(
        files / "p.parquet"
    )
    assert margin(files, "p.parquet", "--json") == 0
    assert [a["account"] for a in json.loads(capsys.readouterr().out)["accounts"]] == ["1", "2"]
    pd.DataFrame({"account": [1.0, 2.0], "instrument": [PUT, PUT], "quantity": [-20.0, -20.0]}).to_parquet(
        files / "f.parquet"
    )
    assert margin(files, "f.parquet") == 2
    assert "column 'account' must hold strings or integers, got Arrow type double" in one_error_line(capsys)


def test_parquet_duplicate_columns_are_refused(files, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table(
        [pa.array(["a"]), pa.array([PUT]), pa.array([-20.0]), pa.array([3.0])],
        names=["account", "instrument", "quantity", "quantity"],
    )
    pq.write_table(table, files / "d.parquet")
    assert margin(files, "d.parquet") == 2
    assert "column 'quantity' appears more than once" in one_error_line(capsys)


# --- 9.2h: files ------------------------------------------------------------------------------------


@pytest.fixture()
def alarm():
    """Fails the test instead of hanging the suite if a read blocks."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def boom(*_):
        raise TimeoutError("the CLI blocked on an input file")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("option", ["positions", "--instruments", "--market", "--collateral", "--model"])
def test_a_fifo_is_refused_without_blocking(files, capsys, alarm, option):
    fifo = files / ("in.csv" if option in ("positions", "--instruments", "--collateral") else "in.toml")
    os.mkfifo(fifo)
    args = {
        "positions": str(files / "pos.csv"),
        "--instruments": str(files / "inst.csv"),
        "--market": str(files / "mkt.toml"),
        "--model": "deribit-pm",
    }
    extra = []
    if option == "--collateral":
        extra = ["--collateral", str(fifo)]
    else:
        args[option] = str(fifo)
    argv = [
        "margin",
        args["positions"],
        "--model",
        args["--model"],
        "--instruments",
        args["--instruments"],
        "--market",
        args["--market"],
        *extra,
    ]
    assert cli_main(argv) == 2
    err = one_error_line(capsys)
    assert "in." in err and ("not a regular file (a FIFO)" in err or "neither a preset" in err)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
@pytest.mark.parametrize("option", ["positions", "--instruments", "--market", "--collateral"])
def test_dev_zero_is_refused_not_read(files, capsys, alarm, option, monkeypatch, tmp_path):
    zero = tmp_path / ("zero.csv" if option != "--market" else "zero.toml")
    os.symlink("/dev/zero", zero)  # the suffix picks the reader; the target is the device
    argv = [
        "margin",
        str(files / "pos.csv"),
        "--model",
        "deribit-pm",
        "--instruments",
        str(files / "inst.csv"),
        "--market",
        str(files / "mkt.toml"),
    ]
    if option == "positions":
        argv[1] = str(zero)
    elif option == "--collateral":
        argv += ["--collateral", str(zero)]
    else:
        argv[argv.index(option) + 1] = str(zero)
    assert cli_main(argv) == 2
    assert "not a regular file (a character device)" in one_error_line(capsys)
    assert cli_main([*argv[:1], *argv[1:], "--collateral", "/dev/zero"] if option == "positions" else argv) == 2
    one_error_line(capsys)


def test_a_directory_is_refused(files, capsys):
    (files / "dir.csv").mkdir()
    assert margin(files, "dir.csv") == 2
    assert "not a regular file" in one_error_line(capsys)


def test_size_limits(files, capsys, monkeypatch):
    monkeypatch.setattr(_io, "MAX_TABLE_BYTES", 100)
    assert margin(files) == 2
    assert "inst.csv: the instruments is 962 bytes, more than the limit of 100" in one_error_line(capsys)
    monkeypatch.setattr(_io, "MAX_TABLE_BYTES", 1 << 30)
    monkeypatch.setattr(_io, "MAX_DOCUMENT_BYTES", 50)
    assert margin(files) == 2
    assert "more than the limit of 50" in one_error_line(capsys)


def test_deeply_nested_json_is_one_line(files, capsys):
    (files / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    assert margin(files, market="deep.json") == 2
    assert "deep.json" in one_error_line(capsys)
    (files / "deep.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert margin(files, market="deep.toml") == 2
    assert "deep.toml" in one_error_line(capsys)


def test_parquet_without_pyarrow_is_one_line(files):
    (files / "p.parquet").write_bytes(b"PAR1")
    script = (
        "import sys; sys.modules['pyarrow'] = None\n"  # as if not installed: import pyarrow fails
        "from marginkernel.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    common = ["--model", "deribit-pm", "--instruments", str(files / "inst.csv"), "--market", str(files / "mkt.toml")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for argv, message in [
        (
            ["margin", str(files / "p.parquet"), *common],
            "p.parquet: reading Parquet needs pyarrow (pip install pyarrow)",
        ),
        (
            ["margin", str(files / "pos.csv"), *common, "--output", str(files / "o.parquet")],
            "writing Parquet needs pyarrow",
        ),
    ]:
        proc = subprocess.run(
            [sys.executable, "-c", script, *argv], check=False, capture_output=True, text=True, env=env, timeout=120
        )
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.startswith("marginkernel: error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert message in proc.stderr


def test_not_utf8_and_empty_files(files, capsys):
    (files / "p.csv").write_bytes(b"account,instrument,quantity\n\xff\xfe,x,1\n")
    assert margin(files, "p.csv") == 2
    assert "not UTF-8 text" in one_error_line(capsys)
    (files / "p.csv").write_text("\n\n")
    assert margin(files, "p.csv") == 2
    assert "the file is empty" in one_error_line(capsys)


@pytest.mark.parametrize(
    "flag, value", [("--threads", "0"), ("--workers", "-1"), ("--top", "x"), ("--partitions", "0")]
)
def test_bad_numeric_options_exit_2(files, capsys, flag, value):
    with pytest.raises(SystemExit) as info:
        margin(files, "pos.csv", flag, value)
    assert info.value.code == 2
    assert flag in capsys.readouterr().err


def test_overflowing_market_values_are_one_line(files, capsys):
    text = (files / "mkt.toml").read_text().replace("BTC = 0.06", "BTC = 1e6")
    (files / "carry.toml").write_text(text)
    assert margin(files, market="carry.toml") == 2
    one_error_line(capsys)  # OverflowError today (issue 9.2h: the API is to raise ValueError naming carry)
