#!/usr/bin/env python3
"""Independent reference for src/stats.h: percentile-bootstrap CIs of a mean and of a ratio of
means, and the sign-flip test, drawing from the same seeded stream (noise_reference.Stream) and
taking percentiles with numpy.quantile's default 'linear' method — the definitions in stats.h,
written here from that text, not from our C.

    python3 tests/reference/stats_reference.py > tests/fixtures/trace/stats_reference.json

The data sets are generated here too (from their own streams) and stored in the fixture, so
tests/test_stats.c needs no Python.
"""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from noise_reference import Stream  # noqa: E402


def mean(values):
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


def ci_quantiles(level):
    return [(1 - level) / 2, (1 + level) / 2]


def bootstrap(x, y, n_resamples, level, seed, stream):
    """[estimate, lo, hi]; y None: the mean of x, else mean(x) / mean(y) with paired indices."""
    n = len(x)
    rng = Stream(seed, stream)
    stats = []
    for _ in range(n_resamples):
        sx = sy = 0.0
        for _ in range(n):
            k = rng.below(n)
            sx += x[k]
            if y is not None:
                sy += y[k]
        stats.append(sx / n if y is None else (sx / n) / (sy / n))
    lo, hi = np.quantile(np.array(stats), ci_quantiles(level), method="linear")
    est = mean(x) if y is None else mean(x) / mean(y)
    return [est, float(lo), float(hi)]


def sign_flip(x, n_flips, seed, stream):
    n = len(x)
    rng = Stream(seed, stream)
    observed = mean(x)
    scale = mean([abs(v) for v in x])
    extreme = 0
    for _ in range(n_flips):
        words = [rng.u32() for _ in range((n + 31) // 32)]
        total = 0.0
        for i, v in enumerate(x):
            total += -v if (words[i // 32] >> (i % 32)) & 1 else v
        if abs(total / n) >= abs(observed) - 1e-12 * scale:
            extreme += 1
    return {"mean": observed, "n_extreme": extreme, "p": (1 + extreme) / (1 + n_flips)}


def data(seed, n, f):
    rng = Stream(seed, 1000)
    return [f(rng.uniform()) for _ in range(n)]


def main():
    boot = []
    for name, x, n_resamples, level, seed, stream in [
        ("mean_n128", data(1, 128, lambda u: 2.0 * u - 0.6), 5000, 0.95, 0, 3),
        ("mean_n20_level90", data(2, 20, lambda u: u * u - 0.25), 1000, 0.9, 11, 0),
        ("mean_n2", [0.25, -1.5], 300, 0.95, 5, 5),
    ]:
        est, lo, hi = bootstrap(x, None, n_resamples, level, seed, stream)
        boot.append({"name": name, "x": x, "n_resamples": n_resamples, "level": level,
                     "seed": seed, "stream": stream, "estimate": est, "lo": lo, "hi": hi})

    ratio = []
    y = data(3, 64, lambda u: 0.5 + u)
    noise = data(4, 64, lambda u: 0.3 * (u - 0.5))
    x = [0.5 * a + b for a, b in zip(y, noise)]
    est, lo, hi = bootstrap(x, y, 5000, 0.95, 0, 9)
    ratio.append({"name": "ratio_n64", "x": x, "y": y, "n_resamples": 5000, "level": 0.95,
                  "seed": 0, "stream": 9, "estimate": est, "lo": lo, "hi": hi})

    flips = []
    for name, x, n_flips, seed, stream in [
        ("positive_n12", data(5, 12, lambda u: 1.0 + u), 10000, 0, 1),
        ("centred_n40", data(6, 40, lambda u: u - 0.5), 10000, 3, 2),
        ("shifted_n33", data(7, 33, lambda u: u - 0.3), 2000, 0, 4),
        ("mean_n128", data(1, 128, lambda u: 2.0 * u - 0.6), 10000, 0, 5),
    ]:
        r = sign_flip(x, n_flips, seed, stream)
        flips.append({"name": name, "x": x, "n_flips": n_flips, "seed": seed, "stream": stream,
                      **r})

    # numpy's linear interpolation on its own, at many fractional positions: the two branches of
    # its lerp (from below when g < 0.5, from above otherwise) differ in the last bit often
    # enough that a one-branch implementation fails here.
    qs = [0.0, 0.025, 0.975, 0.1, 0.5, 0.9, 0.333, 0.05, 0.95, 0.7, 0.99, 1.0]
    percentiles = []
    rng = Stream(21, 1000)
    for k in range(30):
        n = 2 + (k * 7) % 23
        s = sorted(rng.uniform() * 1000.0 - 300.0 for _ in range(n))
        percentiles.append({"sorted": s, "q": qs,
                            "values": [float(v) for v in np.quantile(np.array(s), qs,
                                                                     method="linear")]})

    json.dump({"_about": "tests/reference/stats_reference.py: bootstrap CIs and sign-flip tests "
                         "per src/stats.h (numpy.quantile 'linear')",
               "bootstrap_mean": boot, "bootstrap_ratio": ratio, "sign_flip": flips,
               "percentiles": percentiles},
              sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
