"""Pictures: each renders a real PNG of the requested size."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from matplotlib import image

import marginkernel as mk
from marginkernel import plots, stress
from marginkernel.cli import main as cli_main
from marginkernel.demo import demo_inputs
from marginkernel.explain import explain

INST, MKT, POS = demo_inputs()
PNG = b"\x89PNG\r\n\x1a\n"


def check_png(path, width=900, height=550):
    data = path.read_bytes()
    assert data[:8] == PNG
    pixels = image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].std() > 0.05  # not a blank canvas


@pytest.fixture(scope="module")
def engine():
    return mk.Engine(INST, MKT, mk.load_model("deribit-pm"))


def test_heatmap_marks_the_binding_scenario(engine, tmp_path):
    res = engine.margin(POS)
    fig = plots.heatmap(engine, res, "naked-short", tmp_path / "heat.png")
    check_png(tmp_path / "heat.png")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    worst = res.accounts.loc["naked-short", "worst_scenario"]
    assert labels == [f"binding: {worst}"]


def test_breakdown_and_contributions(engine, tmp_path):
    res = engine.margin(POS)
    plots.breakdown(res, tmp_path / "b.png")
    check_png(tmp_path / "b.png")
    plots.contributions(explain(engine, POS), tmp_path / "c.png", size=(6, 4), dpi=50)
    check_png(tmp_path / "c.png", 300, 200)


def test_stress_results(engine, tmp_path):
    sections = {
        "stress": stress.run(engine, POS, [stress.Stress("crash", {"default": -0.3})]),
        "historical": stress.replay(engine, POS, (1,), top=1),
    }
    plots.stress_results(sections, tmp_path / "s.png")
    check_png(tmp_path / "s.png")


def test_cli_writes_plots(tmp_path, capsys):
    d = str(Path(__file__).resolve().parents[1] / "python" / "marginkernel" / "data")
    args = [
        f"{d}/demo_positions.csv",
        "--model",
        "deribit-pm",
        "--instruments",
        f"{d}/demo_instruments.csv",
        "--market",
        f"{d}/demo_market.toml",
    ]
    assert (
        cli_main(
            [
                "explain",
                *args,
                "--plot",
                str(tmp_path / "x.png"),
                "--heatmap",
                str(tmp_path / "h.png"),
                "--breakdown",
                str(tmp_path / "b.png"),
                "--account",
                "naked-short",
            ]
        )
        == 0
    )
    for name in ("x", "h", "b"):
        check_png(tmp_path / f"{name}.png")
    assert cli_main(["stress", *args, "--historical", "1", "--top", "1", "--plot", str(tmp_path / "s.png")]) == 0
    check_png(tmp_path / "s.png")
    assert cli_main(["explain", *args, "--plot", str(tmp_path / "x.jpg")]) == 2
    assert "expected a .png" in capsys.readouterr().err
