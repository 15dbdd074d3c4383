"""Small SPAN XML files generated from the schema, for the docs, the tests and the benchmarks.

The arrays are computed here, in NumPy, from the same model the regeneration documents (Black-Scholes
options on a physical, futures with their carry over the look-ahead, physicals), independently of
the C++ kernel, and written with six decimals like the files clearing houses publish. Layouts:

* ``"nse"`` -- NSE-style: weekly and monthly expiries (``<pe>`` YYYYMMDD), ``<lookAheadYears>``,
  extreme moves of 2× the scan range covering 35 %, calendar spreads with ``<pLeg>`` legs,
  physicals without arrays, futures carrying their interest rate;
* ``"takasbank"`` -- Takasbank-style: monthly periods, extremes of 3× covering 32 %, ``<tLeg>``
  legs in tier 0, an inter-commodity spread, no look-ahead in the file;
* ``"tiers"`` -- the Takasbank layout with two intra-commodity tiers, a spread between them and
  short-option-minimum rates per tier.

``sample_xml(layout, n_underlyings=..., n_expiries=..., n_strikes=...)`` returns the XML text;
``sample_file(path, ...)`` writes it (a few hundred underlyings make a file of tens of MB).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_MOVES = [0, 0, 1, 1, -1, -1, 2, 2, -2, -2, 3, 3, -3, -3]  # thirds of the price scan range
_VOLS = [1, -1] * 7


@dataclass(frozen=True)
class _Layout:
    ec: str
    currency: str
    extreme: float
    cover: float
    look_ahead: float | None  # written as <lookAheadYears> when set
    model_look_ahead: float  # used for the arrays
    periods: tuple[tuple[str, str, float], ...]  # (futures pe, series pe, T)
    legs: str  # "pLeg" or "tLeg"
    phy_array: bool
    carry: bool
    tiers: bool
    inter: bool


_LAYOUTS = {
    "nse": _Layout(
        "NSCCL",
        "INR",
        2.0,
        0.35,
        1 / 365,
        1 / 365,
        (("20240104", "20240104", 3 / 365), ("20240111", "20240111", 10 / 365), ("20240125", "20240125", 24 / 365)),
        "pLeg",
        False,
        True,
        False,
        False,
    ),
    "takasbank": _Layout(
        "TKS",
        "TRY",
        3.0,
        0.32,
        None,
        1 / 250,
        (("202401", "202401S0", 0.08), ("202402", "202402S0", 0.16), ("202403", "202403S0", 0.25)),
        "tLeg",
        True,
        False,
        False,
        True,
    ),
    "tiers": _Layout(
        "TKS",
        "TRY",
        3.0,
        0.32,
        None,
        1 / 250,
        (("202401", "202401S0", 0.08), ("202402", "202402S0", 0.16), ("202403", "202403S0", 0.25)),
        "tLeg",
        True,
        False,
        True,
        True,
    ),
}


def points(layout: str = "nse") -> list[tuple[float, float, float, int]]:
    """Scan points of a layout: (price move in scan ranges, vol move, weight, paired point)."""
    lay = _LAYOUTS[layout]
    out = [(m / 3, v, 1.0, k + 2 if k % 2 == 0 else k) for k, (m, v) in enumerate(zip(_MOVES, _VOLS, strict=True))]
    return [*out, (lay.extreme, 0.0, lay.cover, 15), (-lay.extreme, 0.0, lay.cover, 16)]


_DELTA_POINTS = [(-1.0, 0.25), (0.0, 0.5), (1.0, 0.25)]


def _bs(s: Any, k: Any, sigma: Any, t: Any, r: Any, call: Any) -> np.ndarray:  # noqa: PLR0917 -- the formula's own order
    from scipy.special import ndtr

    tt = np.maximum(t, 1e-12)
    sd = np.maximum(sigma, 1e-12) * np.sqrt(tt)
    d1 = (np.log(s / k) + (r + 0.5 * sigma * sigma) * tt) / sd
    d2 = d1 - sd
    c = s * ndtr(d1) - k * np.exp(-r * tt) * ndtr(d2)
    return np.asarray(np.where(call, c, c - s + k * np.exp(-r * tt)), dtype=np.float64)


def _ra(values: np.ndarray, delta: float) -> str:
    return "<ra><r>1</r>" + "".join(f"<a>{v:.6f}</a>" for v in values) + f"<d>{delta:.6f}</d></ra>"


def _point(tag: str, k: int, p: tuple[float, float, float, int | None]) -> str:
    pm, vm, w, pair = p
    extra = f"<pairedPoint>{pair}</pairedPoint>" if pair is not None else ""
    return (
        f"<{tag}><point>{k}</point><priceScanDef><mult>{pm:.6f}</mult><numerator>{pm * 3:.6f}</numerator>"
        f"<denominator>3.000000</denominator></priceScanDef><volScanDef><mult>{vm:.6f}</mult><numerator>{vm:.6f}"
        f"</numerator><denominator>1.000000</denominator></volScanDef><weight>{w:.6f}</weight>{extra}</{tag}>"
    )


def _options(lay: _Layout, *, s0: float, scan: float, r: float, n_strikes: int, base: int) -> str:
    pts = points_arrays(lay)
    out = []
    for e, (_, pe, t) in enumerate(lay.periods):
        strikes = s0 * (1 + 0.02 * np.arange(-n_strikes, n_strikes + 1))
        opts = []
        for j, k in enumerate(strikes):
            for o, call in (("C", True), ("P", False)):
                vol = 0.2 + 0.01 * abs(j - n_strikes)
                arr, delta, now = option_array(lay, pts, s0=s0, k=k, vol=vol, t=t, r=r, scan=scan, call=call)
                cid = base + 1000 * e + 2 * j + (0 if call else 1)
                opts.append(
                    f"<opt><cId>{cid}</cId><o>{o}</o><k>{k:.2f}</k><p>{now:.2f}</p><d>{delta:.4f}</d><v>{vol:.4f}</v>"
                    f"<val>{now:.2f}</val>{_ra(arr, delta)}</opt>"
                )
        out.append(
            f"<series><pe>{pe}</pe><setlDate>{pe[:8]}</setlDate><t>{t:.6f}</t><cvf>1</cvf><sc>1</sc>"
            f"<undC><exch>X</exch><pfId>{base}</pfId><cId>1</cId><s>B</s><i>1</i></undC>"
            f"<intrRate><val>{r:.4f}</val><rl>0</rl><cpm>0</cpm><exm>0</exm></intrRate>"
            f"<scanRate><r>1</r><priceScan>{scan:.2f}</priceScan><volScanPct>0.25</volScanPct></scanRate>"
            + "".join(opts)
            + "</series>"
        )
    return "".join(out)


def points_arrays(lay: _Layout) -> dict[str, np.ndarray]:
    pts = points("nse" if lay.extreme == 2.0 else "takasbank")
    return {
        "pm": np.array([p[0] for p in pts]),
        "vm": np.array([p[1] for p in pts]),
        "w": np.array([p[2] for p in pts]),
    }


def option_array(
    lay: _Layout,
    pts: dict[str, np.ndarray],
    *,
    s0: float,
    k: float,
    vol: float,
    t: float,
    r: float,
    scan: float,
    call: bool,
) -> tuple[np.ndarray, float, float]:
    """Published array, composite delta and value now of one option (cvf 1, no dividends)."""
    dt = lay.model_look_ahead
    now = float(_bs(np.array(s0), np.array(k), np.array(vol), np.array(t), np.array(r), np.array(call)))
    later = _bs(
        s0 + scan * pts["pm"],
        np.full(16, k),
        vol * (1 + 0.25 * pts["vm"]),
        np.full(16, t - dt),
        np.full(16, r),
        np.full(16, call),
    )
    s_j = s0 + scan * np.array([p for p, _ in _DELTA_POINTS])
    h = 1e-4 * s_j
    up = _bs(s_j + h, np.full(3, k), np.full(3, vol), np.full(3, t - dt), np.full(3, r), np.full(3, call))
    down = _bs(s_j - h, np.full(3, k), np.full(3, vol), np.full(3, t - dt), np.full(3, r), np.full(3, call))
    delta = float(((up - down) / (2 * h)) @ np.array([w for _, w in _DELTA_POINTS]))
    return pts["w"] * (now - later), delta, now


def futures_array(lay: _Layout, pts: dict[str, np.ndarray], *, f: float, scan: float, b: float) -> np.ndarray:
    """Published array of a future (cvf 1): w (F - (F + dS) e^{-b dt})."""
    return np.asarray(pts["w"] * (f - (f + scan * pts["pm"]) * np.exp(-b * lay.model_look_ahead)))


def _underlying(lay: _Layout, u: int, n_strikes: int) -> tuple[str, str]:
    """(exchange portfolios, ccDef) of underlying ``u``."""
    cc = "IDX" if u == 0 else f"STK{u}"
    base = 10 * u + 1  # pfIds base (phy), base + 1 (fut), base + 2 (opt); contract ids base * 10000 + ...
    s0, r = 1000.0 + 50.0 * u, 0.07
    scan = round(0.09 * s0, 2) if lay.carry else round(0.1 * s0, 2)
    pts = points_arrays(lay)
    phy_ra = _ra(np.zeros(16), 1.0) if lay.phy_array else ""
    pfs = [
        f"<phyPf><pfId>{base}</pfId><pfCode>{cc}</pfCode><name>{cc}</name><currency>{lay.currency}</currency>"
        f"<cvf>1</cvf><valueMeth>EQTY</valueMeth><phy><cId>1</cId><pe>000000</pe><p>{s0:.2f}</p><d>1</d><v>0</v>"
        f"<cvf>1</cvf><val>{s0:.2f}</val><scanRate><r>1</r><priceScan>0</priceScan><volScan>0</volScan></scanRate>"
        f"{phy_ra}</phy></phyPf>"
    ]
    futs = []
    for e, (pe, _, t) in enumerate(lay.periods):
        b = r if lay.carry else 0.0
        f = round(s0 * np.exp(b * t), 2)
        carry = f"<intrRate><val>{r:.4f}</val><rl>0</rl><cpm>0</cpm><exm>0</exm></intrRate>" if lay.carry else ""
        futs.append(
            f"<fut><cId>{100 + e}</cId><pe>{pe}</pe><p>{f:.2f}</p><d>1</d><v>0</v><cvf>1</cvf><val>{f:.2f}</val>"
            f"<sc>1</sc><setlDate>{pe[:8]}</setlDate><t>{t:.6f}</t><undC><exch>X</exch><pfId>{base}</pfId><cId>1</cId>"
            f"<s>B</s><i>1</i></undC>{carry}<scanRate><r>1</r><priceScan>{scan:.2f}</priceScan><volScan>0</volScan>"
            f"</scanRate>{_ra(futures_array(lay, pts, f=f, scan=scan, b=b), 1.0)}</fut>"
        )
    und = f"<undPf><exch>X</exch><pfId>{base}</pfId><pfCode>{cc}</pfCode><pfType>PHY</pfType><s>B</s><i>1</i></undPf>"
    pfs.append(
        f"<futPf><pfId>{base + 1}</pfId><pfCode>{cc}</pfCode><name>{cc} FUT</name><currency>{lay.currency}"
        f"</currency><cvf>1</cvf><valueMeth>FUT</valueMeth>{und}{''.join(futs)}</futPf>"
    )
    pfs.append(
        f"<oopPf><pfId>{base + 2}</pfId><pfCode>{cc}</pfCode><name>{cc} OPT</name><exercise>EURO</exercise>"
        f"<currency>{lay.currency}</currency><cvf>1</cvf><cab>0</cab><valueMeth>PREM</valueMeth>"
        f"<priceModel>BS</priceModel>{und}"
        + _options(lay, s0=s0, scan=scan, r=r, n_strikes=n_strikes, base=base)
        + "</oopPf>"
    )
    return "".join(pfs), _ccdef(lay, cc, base)


def _rate(v: float) -> str:
    return f"<rate><r>1</r><val>{v}</val></rate>"


def _ccdef(lay: _Layout, cc: str, base: int) -> str:
    links = "".join(
        f"<pfLink><exch>X</exch><pfId>{base + k}</pfId><pfCode>{cc}</pfCode><sc>1</sc></pfLink>" for k in range(3)
    )
    months = [p[0] for p in lay.periods]
    if lay.tiers:
        intra = (
            f"<intraTiers><tier><tn>1</tn><sPe>{months[0]}</sPe><ePe>{months[0]}</ePe></tier>"
            f"<tier><tn>2</tn><sPe>{months[1]}</sPe><ePe>{months[-1]}</ePe></tier></intraTiers>"
        )
        som = (
            f"<somTiers><tier><tn>1</tn><sPe>{months[0]}</sPe><ePe>{months[0]}</ePe>{_rate(5)}</tier>"
            f"<tier><tn>2</tn><sPe>{months[1]}</sPe><ePe>{months[-1]}</ePe>{_rate(3)}</tier></somTiers>"
        )
        spreads = (
            f"<dSpread><spread>1</spread><chargeMeth>F</chargeMeth>{_rate(30)}"
            f"<tLeg><cc>{cc}</cc><tn>1</tn><rs>A</rs><i>1</i></tLeg>"
            f"<tLeg><cc>{cc}</cc><tn>2</tn><rs>B</rs><i>1</i></tLeg></dSpread>"
        )
    else:
        intra = "<intraTiers><tier><tn>0</tn></tier></intraTiers>"
        som = f"<somTiers><tier><tn>0</tn>{_rate(0 if lay.legs == 'pLeg' else 7)}</tier></somTiers>"
        if lay.legs == "pLeg":
            spreads = "".join(
                f"<dSpread><spread>{k + 1}</spread><chargeMeth>F</chargeMeth>{_rate(400 + 10 * k)}"
                f"<pLeg><cc>{cc}</cc><pe>{months[k]}</pe><rs>A</rs><i>1</i></pLeg>"
                f"<pLeg><cc>{cc}</cc><pe>{months[k + 1]}</pe><rs>B</rs><i>1</i></pLeg></dSpread>"
                for k in range(len(months) - 1)
            )
        else:
            spreads = (
                f"<dSpread><spread>1</spread><chargeMeth>F</chargeMeth>{_rate(12)}"
                f"<tLeg><cc>{cc}</cc><tn>0</tn><rs>B</rs><i>1</i></tLeg>"
                f"<tLeg><cc>{cc}</cc><tn>0</tn><rs>A</rs><i>1</i></tLeg></dSpread>"
            )
    return (
        f"<ccDef><cc>{cc}</cc><name>{cc}</name><currency>{lay.currency}</currency><riskExponent>0</riskExponent>"
        f"<capAnov>0</capAnov><procMeth>NORMAL</procMeth><wfprMeth>NORMAL</wfprMeth><spotMeth>NORMAL</spotMeth>"
        f"<somMeth>GROSS</somMeth><cmbMeth>NONE</cmbMeth>{links}<adjRate><r>1</r><baseR>1</baseR><val>1</val>"
        f"</adjRate>{intra}<interTiers><tier><tn>0</tn></tier></interTiers>{som}{spreads}</ccDef>"
    )


def sample_xml(layout: str = "nse", *, n_underlyings: int = 2, n_strikes: int = 2) -> str:
    """SPAN XML text of ``layout`` ('nse', 'takasbank', 'tiers') with ``n_underlyings`` combined
    commodities (the first is 'IDX', then 'STK1', ...), each with a physical, one future and one
    option series per period, and ``2 * n_strikes + 1`` strikes of calls and puts per series."""
    if layout not in _LAYOUTS:
        raise ValueError(f"layout: must be one of {sorted(_LAYOUTS)}, got {layout!r}")
    for name, value in (("n_underlyings", n_underlyings), ("n_strikes", n_strikes)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
            raise ValueError(f"{name}: must be an integer in [0, 100000], got {value!r}")
    lay = _LAYOUTS[layout]
    parts = [_underlying(lay, u, n_strikes) for u in range(n_underlyings)]
    look = f"<lookAheadYears>{lay.look_ahead:.9f}</lookAheadYears>" if lay.look_ahead is not None else ""
    pdef = "".join(_point("scanPointDef", k + 1, p) for k, p in enumerate(points(layout)))
    pdef += "".join(_point("deltaPointDef", k + 1, (pm, 0.0, w, None)) for k, (pm, w) in enumerate(_DELTA_POINTS))
    inter = ""
    if lay.inter and n_underlyings >= 2:
        inter = (
            "<interSpreads><dSpread><spread>1</spread><chargeMeth>W</chargeMeth><rate><r>1</r><val>0.5</val>"
            "</rate><tLeg><cc>STK1</cc><tn>0</tn><rs>A</rs><i>1</i></tLeg>"
            "<tLeg><cc>IDX</cc><tn>0</tn><rs>B</rs><i>1</i></tLeg></dSpread></interSpreads>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<spanFile><fileFormat>4.00</fileFormat><created>202401021830</created>'
        f"<definitions><currencyDef><currency>{lay.currency}</currency><symbol>$</symbol><name>{lay.currency}</name>"
        "<decimalPos>2</decimalPos></currencyDef><acctTypeDef><isCust>1</isCust><acctType>H</acctType>"
        "<isNetMargin>1</isNetMargin><priority>1</priority></acctTypeDef></definitions>"
        f"<pointInTime><date>20240102</date><isSetl>1</isSetl><clearingOrg><ec>{lay.ec}</ec><name>{lay.ec}</name>"
        f"<finalizeMeth>BY</finalizeMeth><capAnov>0</capAnov>{look}"
        f"<curConv><fromCur>USD</fromCur><toCur>{lay.currency}</toCur><factor>80</factor></curConv>"
        f"<pointDef><r>1</r>{pdef}</pointDef><exchange><exch>X</exch><name>X</name>"
        + "".join(p[0] for p in parts)
        + "</exchange>"
        + "".join(p[1] for p in parts)
        + inter
        + "</clearingOrg></pointInTime></spanFile>\n"
    )


def sample_file(
    path: str | os.PathLike[str], layout: str = "nse", *, n_underlyings: int = 2, n_strikes: int = 2
) -> Path:
    """Write :func:`sample_xml` to ``path`` and return the path."""
    p = Path(path)
    p.write_text(sample_xml(layout, n_underlyings=n_underlyings, n_strikes=n_strikes), encoding="utf-8")
    return p


__all__ = ["futures_array", "option_array", "points", "sample_file", "sample_xml"]
