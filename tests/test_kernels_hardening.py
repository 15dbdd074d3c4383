"""Regression tests for the defects of the adversarial review (issue 9, items 2a, 2b, 2f, 2g, 2i):
each one crashed, hung or returned silent garbage before."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bad_input import net_inputs, revalue_inputs
from marginkernel import InputError, _core, kernels, reference

PYTHON_DIR = str(Path(kernels.__file__).resolve().parents[1])


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": PYTHON_DIR, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


# --- 2a: net(out=...) must not overlap any input --------------------------------------------------


def _net_with_shared_buffer(field: str) -> tuple[dict, np.ndarray]:
    """net inputs whose `field` lives inside the buffer handed as `out`."""
    args = net_inputs()
    n_acc = len(args["account_start"]) - 1
    out = np.zeros((n_acc, args["n_units"], args["risk"].shape[1]))
    flat = out.reshape(-1)
    source = args[field]
    view = flat.view(source.dtype)[: source.size].reshape(source.shape)
    view[...] = source
    args[field] = view
    return args, out


@pytest.mark.parametrize("field", ["risk", "risk_unit", "account_start", "instrument", "quantity"])
def test_net_out_overlapping_any_input_is_refused(field: str) -> None:
    args, out = _net_with_shared_buffer(field)
    before = args[field].copy()
    with pytest.raises(ValueError, match="out: overlaps an input"):
        kernels.net(**args, out=out)
    # The compiled entry point checks it too (it used to segfault or overwrite the caller's array).
    core_args = [args[k] for k in ("risk", "risk_unit", "n_units", "account_start", "instrument", "quantity")]
    with pytest.raises(InputError, match="out: overlaps an input") as err:
        _core.net(*core_args, 1, out)
    assert err.value.field == "out"
    np.testing.assert_array_equal(args[field], before)


def test_revalue_core_out_overlapping_an_input_is_refused() -> None:
    args = revalue_inputs()
    n, s = len(args["kind"]), args["price_multiplier"].shape[1]
    out = np.zeros((n, s))
    args["strike"] = out.reshape(-1)[:n]
    args["strike"][...] = [1.0, 1.0, 100.0, 2000.0, 1.0]
    arrays = [args[k] for k in list(args)[:13]]
    with pytest.raises(InputError, match="out: overlaps an input"):
        _core.revalue(*arrays, 1, 1.0, 0.0, 0.0, 0.0, 1, out)


# --- 2b: threads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [0, -3])
def test_threads_below_one_are_refused(threads: int) -> None:
    with pytest.raises(ValueError, match="threads"):
        kernels.net(**net_inputs(), threads=threads)
    with pytest.raises(ValueError, match="threads"):
        kernels.revalue(**revalue_inputs(), threads=threads)
    with pytest.raises(InputError, match="threads: must be >= 1"):  # the core checks it as well
        _core.net(*net_inputs().values(), threads)


@pytest.mark.parametrize("threads", [1.5, 2.0, True, "2", None])
def test_threads_must_be_an_integer(threads: object) -> None:
    with pytest.raises(TypeError, match="threads"):
        kernels.net(**net_inputs(), threads=threads)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="threads"):
        kernels.revalue(**revalue_inputs(), threads=threads)  # type: ignore[arg-type]


def test_many_threads_are_capped_not_fatal() -> None:
    # 40000 threads used to abort the process (std::terminate); now capped at the hardware's count.
    net_one = kernels.net(**net_inputs())
    revalue_one = kernels.revalue(**revalue_inputs())[0]
    for threads in (40000, 2**31 - 1, 2**40):
        np.testing.assert_array_equal(kernels.net(**net_inputs(), threads=threads), net_one)
        np.testing.assert_array_equal(kernels.revalue(**revalue_inputs(), threads=threads)[0], revalue_one)


def test_a_thread_that_cannot_start_is_not_fatal() -> None:
    # Address space capped just above what the process uses: a second thread cannot get its stack,
    # and the calling thread does all the work instead (it used to call std::terminate).
    result = run_python("""
        import resource, numpy as np
        from marginkernel import kernels
        risk = np.arange(4000.0).reshape(400, 10); unit = np.zeros(400, np.int32)
        start = np.arange(401, dtype=np.int64); inst = np.arange(400, dtype=np.int32); q = np.ones(400)
        out = np.empty((400, 1, 10)); expected = kernels.net(risk, unit, 1, start, inst, q)
        used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 20), resource.RLIM_INFINITY))
        kernels.net(risk, unit, 1, start, inst, q, threads=8, out=out)
        assert (out == expected).all()
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --- 2f: value_at_risk with weights whose sum overflows ----------------------------------------


def test_var_probability_sum_overflow_is_an_error() -> None:
    pnl = np.array([[1.0, -2.0, 3.0]])
    probability = np.full(3, 1e308)
    with pytest.raises(InputError, match="probability: sum overflows") as err:
        kernels.value_at_risk(pnl, 0.9, probability)
    assert err.value.field == "probability"
    with pytest.raises(ValueError), np.errstate(all="ignore"):  # the reference refuses it as well
        reference.value_at_risk(pnl, 0.9, probability)


def test_var_expected_shortfall_overflow_is_an_error() -> None:
    pnl = np.array([[-1e308, -1e308, 5.0, 6.0]])
    with pytest.raises(InputError, match="expected shortfall overflows") as err:
        kernels.value_at_risk(pnl, 0.5)
    assert (err.value.field, err.value.row) == ("pnl", 0)


# --- 2g: non-finite results from finite input --------------------------------------------------


@pytest.mark.parametrize(
    ("field", "row", "value"),
    [("multiplier", 0, 1e308), ("multiplier", 2, 1e308), ("discount", 2, 1e308), ("forward", 1, 1e-308)],
)
def test_revalue_overflow_names_the_field(field: str, row: int, value: float) -> None:
    args = revalue_inputs()
    args[field] = args[field].copy()
    args[field][row] = value
    with pytest.raises(InputError, match=rf"{field}\[{row}\]: .* out of range") as err:
        kernels.revalue(**args)
    assert (err.value.field, err.value.row) == (field, row)


def test_revalue_price_multiplier_overflow_names_the_unit() -> None:
    args = revalue_inputs()
    args["price_multiplier"] = args["price_multiplier"].copy()
    args["price_multiplier"][0, 3] = 1e308
    with pytest.raises(InputError) as err:
        kernels.revalue(**args)
    assert (err.value.field, err.value.row) == ("price_multiplier", 0)


def test_revalue_vol_scale_overflow_names_the_power() -> None:
    short_dated = {**revalue_inputs(), "expiry": np.full(5, 0.01)}  # 3.65 days: tau = 8.2
    with pytest.raises(InputError, match=r"short_power.*overflows") as err:
        kernels.revalue(**short_dated, short_power=1000.0)
    assert err.value.field == "short_power"
    with pytest.raises(InputError) as err:
        kernels.revalue(**{**revalue_inputs(), "expiry": np.full(5, 2.0)}, long_power=-1000.0)
    assert err.value.field == "long_power"
    # Without a tau-scaled vol shock the power is unused and harmless.
    risk, _ = kernels.revalue(**{**short_dated, "vol_shock": "relative"}, short_power=1000.0)
    assert np.isfinite(risk).all()


@pytest.mark.parametrize("threads", [1, 2])
def test_revalue_results_are_finite_or_refused(threads: int) -> None:
    args = revalue_inputs()
    rng = np.random.default_rng(7)
    for _ in range(50):
        trial = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}
        field = ["multiplier", "forward", "strike", "discount", "vol"][rng.integers(5)]
        trial[field][rng.integers(5)] = 10.0 ** rng.uniform(-300, 300)
        try:
            risk, now = kernels.revalue(**trial, threads=threads)
        except InputError as err:
            assert err.field in {"multiplier", "forward", "strike", "discount", "vol", "spot", "price_multiplier"}
        else:
            assert np.isfinite(risk).all() and np.isfinite(now).all()


def test_worst_loss_overflow_names_the_field() -> None:
    pnl = np.array([[-1.0, 2.0], [-1e300, 5.0]])
    with pytest.raises(InputError) as err:
        kernels.worst_loss(pnl, np.array([[1.0, 1.0], [1e10, 1.0]]))
    assert (err.value.field, err.value.row) == ("weight", 1)
    with pytest.raises(InputError) as err:
        kernels.worst_loss(np.array([[1e300, -1.0]]), None, gain_factor=1e10)
    assert err.value.field == "gain_factor"
    loss, worst = kernels.worst_loss(pnl)  # no weights: the largest finite loss is fine
    assert loss.tolist() == [1.0, 1e300] and worst.tolist() == [0, 0]


def test_net_overflow_names_the_position() -> None:
    args = net_inputs()
    args["quantity"] = np.array([1.0, -2.0, 1e308, 3.0])
    with pytest.raises(InputError, match=r"quantity\[2\]: .* out of range") as err:
        kernels.net(**args)
    assert (err.value.field, err.value.row) == ("quantity", 2)


# --- 2i: MARGINKERNEL_SIMD and the empty book --------------------------------------------------


@pytest.mark.parametrize("value", ["garbage", "AVX2 ", "sse9"])
def test_simd_environment_garbage_fails_the_import(value: str) -> None:
    result = run_python("import marginkernel", MARGINKERNEL_SIMD=value)
    assert result.returncode != 0
    assert f"MARGINKERNEL_SIMD='{value}' is not a SIMD target" in result.stderr
    assert "ImportError" in result.stderr


def test_simd_environment_honoured_or_warned() -> None:
    for target in ("baseline", "avx2", "avx512"):
        result = run_python(
            "import warnings; warnings.simplefilter('error');import marginkernel.kernels as k; print(k.simd_target())",
            MARGINKERNEL_SIMD=target,
        )
        if target in kernels.available_simd_targets():
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == target
        else:  # known target this CPU lacks: a RuntimeWarning (an error under simplefilter('error'))
            assert "is not available on this build and CPU" in result.stderr
    empty = run_python("import marginkernel.kernels as k; print(k.simd_target())", MARGINKERNEL_SIMD="")
    assert empty.stdout.strip() == kernels.available_simd_targets()[0]


def test_net_on_an_empty_book_allocates_nothing_per_unit() -> None:
    # 2^31 - 1 risk units and no accounts: it used to allocate 8 * n_units bytes (16 GiB) per call.
    units = 2**31 - 1
    risk = np.ones((1, 3))
    pnl = kernels.net(risk, np.zeros(1, np.int32), units, np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0))
    assert pnl.shape == (0, units, 3)
    with pytest.raises(ValueError, match="n_units"):
        kernels.net(risk, np.zeros(1, np.int32), 2**31, np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0))
