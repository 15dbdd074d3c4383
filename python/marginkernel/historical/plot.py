"""Picture of a backtest: margin against realised loss, exceptions marked (matplotlib, imported here only)."""

from __future__ import annotations

from typing import Any


def plot_backtest(result: Any, path: str, *, width: float = 10.0, height: float = 5.0, dpi: int = 100) -> None:
    """Save the margin charged (and without APC when it differs), the realised loss over the horizon
    and the exceptions of a :class:`BacktestResult` to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # optional dependency
        raise ValueError(f"--plot needs matplotlib ({exc}); pip install matplotlib") from None
    f = result.frame
    x = f.index.to_numpy().astype("datetime64[D]").astype("datetime64[ms]").astype(object)
    fig, ax = plt.subplots(figsize=(width, height), dpi=dpi)
    try:
        ax.plot(x, -f["realised"], color="0.6", lw=0.6, label=f"realised loss over {result.horizon} d")
        ax.plot(x, f["margin"], color="tab:blue", lw=1.2, label="margin")
        if not (f["margin_no_apc"] == f["margin"]).all():
            ax.plot(x, f["margin_no_apc"], color="tab:orange", lw=0.8, ls="--", label="margin without APC")
        hit = f["exception"].to_numpy()
        ax.scatter(
            [d for d, e in zip(x, hit, strict=True) if e],
            -f["realised"][hit],
            color="tab:red",
            s=14,
            zorder=3,
            label=f"exceptions ({int(hit.sum())})",
        )
        ax.set_title(f"{result.model}: margin vs realised loss (coverage {result.coverage:g})")
        ax.set_ylabel("USD")
        ax.legend(loc="upper left", fontsize=8)
        fig.autofmt_xdate()
        fig.savefig(path, dpi=dpi)
    except (OSError, ValueError) as err:
        raise ValueError(f"--plot {path}: cannot write the picture: {err}") from None
    finally:
        plt.close(fig)
