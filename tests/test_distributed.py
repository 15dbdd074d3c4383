"""Margin in partitions of whole accounts (issue 12.3, 12.5): locally in blocks and on a Dask
LocalCluster; results bitwise identical to one ``Engine.margin`` call; progress callbacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel import distributed
from marginkernel.demo import demo_inputs
from marginkernel.progress import Recorder, TerminalProgress

PRESETS = ["deribit-pm", "okx-pm", "span", "tims"]


def random_book(seed: int = 7, n_accounts: int = 60):
    """A book over the demo instruments with isolated positions, unrealised P&L, repeated rows,
    collateral (also for an account without positions) and extra accounts."""
    inst, mkt, _ = demo_inputs()
    rng = np.random.default_rng(seed)
    n = n_accounts * 5
    accounts = np.array([f"acc{k:03d}" for k in rng.integers(0, n_accounts, n)], dtype=object)
    positions = pd.DataFrame(
        {
            "account": accounts,
            "instrument": rng.choice(inst.ids, n),
            "quantity": np.round(rng.normal(0, 5, n), 3),
            "margin_mode": rng.choice(["cross", "cross", "isolated"], n),
            "unrealised_pnl": rng.normal(0, 0.05, n),
        }
    )
    collateral = pd.DataFrame(
        {
            "account": ["acc001", "acc010", "only-collateral", "acc001", "acc050"],
            "currency": ["BTC", "USDC", "ETH", "USDC", "BTC"],
            "amount": [2.0, 50_000.0, 10.0, -1_000.0, 0.5],
        }
    )
    return inst, mkt, positions, collateral


def assert_identical(got: mk.MarginResult, want: mk.MarginResult, pnl: bool = True) -> None:
    pd.testing.assert_frame_equal(got.accounts, want.accounts, check_exact=True)
    pd.testing.assert_frame_equal(
        got.by_unit.reset_index(drop=True), want.by_unit.reset_index(drop=True), check_exact=True
    )
    if pnl:
        assert got.pnl.shape == want.pnl.shape and np.array_equal(got.pnl, want.pnl)
    else:
        assert got.pnl.shape == (0, *want.pnl.shape[1:])
    assert got.components == want.components and got.units == want.units and got.currency == want.currency


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("partitions", [1, 3, 7, 500])
def test_local_partitions_are_bitwise_identical(preset, partitions):
    inst, mkt, positions, collateral = random_book()
    engine = mk.Engine(inst, mkt, mk.load_model(preset))
    extra = ["acc005", "nobody", "acc059"]
    want = engine.margin(positions, extra, collateral=collateral)
    got = distributed.margin(engine, positions, extra, collateral=collateral, partitions=partitions)
    assert_identical(got, want)
    assert list(got.accounts.index[-2:]) == ["nobody", "only-collateral"]


@pytest.mark.parametrize("partitions", [2, 9])
def test_a_book_sorted_by_account_is_cut_into_blocks_of_rows(partitions):
    """Rows already grouped by account (the usual file): each partition is a block of the rows,
    margined as one call would, and an error names the caller's row, not the partition's."""
    inst, mkt, positions, collateral = random_book(seed=11)
    positions = positions.sort_values("account", kind="stable").reset_index(drop=True)
    engine = mk.Engine(inst, mkt, mk.load_model("deribit-pm"))
    parts = distributed.split(positions, None, None, partitions)
    assert len(parts) == partitions
    assert [int(p.rows[0]) for p in parts] == [0, *np.cumsum([len(p.positions) for p in parts])[:-1]]
    assert all(np.array_equal(p.rows, np.arange(p.rows[0], p.rows[0] + len(p.rows))) for p in parts)
    assert_identical(distributed.margin(engine, positions, partitions=partitions), engine.margin(positions))
    positions.loc[250, "quantity"] = np.inf
    with pytest.raises(ValueError, match=r"positions row 250\b"):
        distributed.margin(engine, positions, partitions=partitions)


def test_integer_account_names_keep_the_engines_index():
    inst, mkt, positions, _ = random_book(seed=9)
    positions["account"] = positions["account"].str[3:].astype(np.int64)
    engine = mk.Engine(inst, mkt, mk.load_model("okx-pm"))
    want = engine.margin(positions, [10_000])
    got = distributed.margin(engine, positions, [10_000], partitions=5)
    assert_identical(got, want)
    assert got.accounts.index.dtype == want.accounts.index.dtype


@pytest.mark.parametrize("mode", ["cross", "isolated"])
def test_book_and_arrow_inputs_and_collateral_mapping(mode):
    inst, mkt, positions, _ = random_book(seed=3)
    positions = positions.drop(columns=["margin_mode", "unrealised_pnl"])
    engine = mk.Engine(inst, mkt, mk.load_model("deribit-pm"))
    collateral = {"acc002": {"BTC": 1.0}, "ghost": {"USDC": 5.0}, "acc030": {"ETH": 3.0}}
    want = engine.margin(positions, collateral=collateral, mode=mode)
    assert_identical(distributed.margin(engine, positions, collateral=collateral, mode=mode, partitions=4), want)
    book = engine.book(positions)
    assert_identical(distributed.margin(engine, book, mode=mode, partitions=5), engine.margin(book, mode=mode))
    pa = pytest.importorskip("pyarrow")
    table = pa.Table.from_pandas(positions, preserve_index=False)
    assert_identical(distributed.margin(engine, table, collateral=collateral, mode=mode, partitions=2), want)


def test_errors_name_the_callers_row():
    inst, mkt, positions, _ = random_book(seed=5)
    positions.loc[200, "instrument"] = "NOPE"
    engine = mk.Engine(inst, mkt, mk.load_model("span"))
    with pytest.raises(ValueError, match="positions row 200: unknown instrument 'NOPE'"):
        engine.margin(positions)
    with pytest.raises(ValueError, match="positions row 200: unknown instrument 'NOPE'"):
        distributed.margin(engine, positions, partitions=6)
    with pytest.raises(ValueError, match="partitions: must be >= 1"):
        distributed.margin(engine, positions, partitions=0)
    with pytest.raises(TypeError, match="engine: expected an Engine"):
        distributed.margin(object(), positions)  # type: ignore[arg-type]


def test_progress_callback_counts_accounts():
    inst, mkt, positions, collateral = random_book()
    engine = mk.Engine(inst, mkt, mk.load_model("tims"))
    rec = Recorder()
    result = distributed.margin(engine, positions, collateral=collateral, partitions=4, progress=rec, pnl=False)
    n = positions["account"].nunique()  # accounts with positions (not the collateral-only one)
    assert len(result.accounts) == n + 1
    assert rec.calls[0] == ("margin", 0, n) and rec.calls[-1] == ("margin", n, n)
    assert len(rec.calls) == 5
    done = [c[1] for c in rec.calls]
    assert done == sorted(done) and all(c[0] == "margin" and c[2] == n for c in rec.calls)


def test_terminal_progress_is_silent_off_a_terminal(capsys):
    import io

    stream = io.StringIO()
    bars = TerminalProgress(stream=stream, delay=0.0)
    assert not bars.enabled
    bars("margin", 0, 10)
    bars("margin", 10, 10)
    assert stream.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    with TerminalProgress(stream=tty, delay=0.0) as shown:
        shown("margin", 0, 10)
        shown("margin", 5, 10)
        shown("margin", 10, 10)
    assert "margining accounts" in tty.getvalue()
    quiet = Tty()
    with TerminalProgress(stream=quiet, quiet=True, delay=0.0) as silent:
        silent("margin", 0, 1)
        silent("margin", 1, 1)
    assert quiet.getvalue() == ""


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.mark.parametrize("preset", ["deribit-pm", "span"])
def test_dask_is_bitwise_identical(client, preset):
    inst, mkt, positions, collateral = random_book(seed=11)
    engine = mk.Engine(inst, mkt, mk.load_model(preset))
    want = engine.margin(positions, ["extra"], collateral=collateral)
    rec = Recorder()
    got = distributed.margin(engine, positions, ["extra"], collateral=collateral, client=client, progress=rec)
    assert_identical(got, want)
    parts = rec.calls[-1][2]
    assert parts >= 4  # two per worker by default
    assert rec.calls[0] == ("partitions", 0, parts) and rec.calls[-1] == ("partitions", parts, parts)
    got = distributed.margin(
        engine,
        engine.book(positions.drop(columns=["margin_mode", "unrealised_pnl"])),
        client=client,
        partitions=9,
        pnl=False,
    )
    assert_identical(
        got, engine.margin(engine.book(positions.drop(columns=["margin_mode", "unrealised_pnl"]))), pnl=False
    )


def test_dask_does_not_revalue_on_workers(client, monkeypatch):
    """The engine travels with its risk arrays: workers (threads here) never call revalue."""
    inst, mkt, positions, _ = random_book(seed=2)
    engine = mk.Engine(inst, mkt, mk.load_model("okx-pm"))
    calls = []
    monkeypatch.setattr(mk.kernels, "revalue", lambda *a, **k: calls.append(1))
    got = distributed.margin(engine, positions, client=client, partitions=3)
    assert calls == []
    assert_identical(got, engine.margin(positions))


def test_dask_error_names_the_row(client):
    inst, mkt, positions, _ = random_book(seed=5)
    positions.loc[123, "quantity"] = np.inf
    engine = mk.Engine(inst, mkt, mk.load_model("span"))
    with pytest.raises(ValueError, match="positions row 123: quantity must be finite, got inf"):
        distributed.margin(engine, positions, client=client, partitions=5)


def _dask_frame(positions: pd.DataFrame, groups: list[list[str]]):
    dd = pytest.importorskip("dask.dataframe")
    frames = [positions[positions["account"].isin(g)] for g in groups]
    return dd.concat([dd.from_pandas(f, npartitions=1) for f in frames])


def test_dask_dataframe_partitions_are_margined_on_the_workers(client):
    inst, mkt, positions, collateral = random_book(seed=13)
    positions = positions.sort_values("account", kind="stable").reset_index(drop=True)  # whole accounts per file
    names = list(dict.fromkeys(positions["account"]))
    groups = [names[:10], names[10:35], names[35:]]
    ddf = _dask_frame(positions, groups)
    engine = mk.Engine(inst, mkt, mk.load_model("deribit-pm"))
    # one Engine.margin call on the partitions concatenated (as Dask types them: strings may become
    # Arrow strings, which changes dtypes, not values)
    want = engine.margin(ddf.compute(), ["extra", names[3]], collateral=collateral)
    rec = Recorder()
    got = distributed.margin(engine, ddf, ["extra", names[3]], collateral=collateral, client=client, progress=rec)
    assert_identical(got, want)
    assert rec.calls[-1] == ("partitions", 3, 3)


def test_dask_dataframe_refuses_split_accounts_and_names_the_partition(client):
    inst, mkt, positions, _ = random_book(seed=13)
    engine = mk.Engine(inst, mkt, mk.load_model("span"))
    ddf = _dask_frame(positions, [["acc001", "acc002"], ["acc002", "acc003"]])  # acc002 in both
    with pytest.raises(ValueError, match="account 'acc002' is in more than one partition"):
        distributed.margin(engine, ddf, client=client)
    bad = positions.copy()
    bad.loc[bad["account"] == "acc003", "instrument"] = "NOPE"
    with pytest.raises(ValueError, match=r"partition 1: positions row \d+: unknown instrument 'NOPE'"):
        distributed.margin(engine, _dask_frame(bad, [["acc001"], ["acc003"]]), client=client)
    with pytest.raises(ValueError, match="pass client="):
        distributed.margin(engine, ddf)


def _worker_environ() -> dict[str, str | None]:
    import os

    return {name: os.environ.get(name) for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}


def test_local_cluster_starts_worker_processes_with_the_malloc_setting():
    """Worker processes keep glibc's freed blocks up to 32 MiB (distributed.WORKER_ENVIRON) beside
    Dask's own trim setting, and margin as the client does; Dask's configuration is left as it was."""
    dask = pytest.importorskip("dask")
    from distributed import Client

    before = dask.config.get("distributed.nanny.pre-spawn-environ")
    inst, mkt, positions, _ = random_book(seed=13)
    engine = mk.Engine(inst, mkt, mk.load_model("okx-pm"))
    with distributed.local_cluster(1) as cluster, Client(cluster) as client:
        assert list(client.run(_worker_environ).values()) == [
            {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "65536"}
        ]
        assert_identical(distributed.margin(engine, positions, client=client), engine.margin(positions))
    assert dask.config.get("distributed.nanny.pre-spawn-environ") == before
    with pytest.raises(ValueError, match="n_workers: must be >= 1"):
        distributed.local_cluster(0)
    too_many = distributed.max_local_workers() + 1
    with pytest.raises(ValueError, match=f"n_workers: must be <= {too_many - 1}, got {too_many}"):
        distributed.local_cluster(too_many)
