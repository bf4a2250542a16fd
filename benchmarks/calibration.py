"""Time calibrate_noise per target epsilon; exit 1 if any calibration takes over 1 s.

The workflow calibrates once per epsilon before training, so this is the budget that keeps the
calibration step negligible. Run: python benchmarks/calibration.py
"""

from __future__ import annotations

import logging
import sys

from memcurv.estimators.privacy import ACCOUNTANTS, calibrate_noise

LIMIT_S = 1.0
DELTA = 1e-5
SETTINGS = {  # name: (sample rate, steps)
    "digits": (256 / 1437, 6 * 30),
    "cifar": (256 / 50000, 20 * 195 + 7),  # 20 epochs of Poisson batches of 256: 3907 steps
    "mnist": (256 / 60000, 14062),
}
TARGETS = [0.5, 1, 2, 5, *range(10, 101, 10)]


def main() -> int:
    logging.getLogger("memcurv.estimators.privacy").setLevel(logging.ERROR)  # fallbacks show in the "used" column
    print(f"{'setting':8} {'target':>6} {'asked':>5} {'used':>4} {'noise':>9} {'eps spent':>10} {'seconds':>8}")
    worst = 0.0
    for name, (rate, steps) in SETTINGS.items():
        for target in TARGETS:
            for accountant in ACCOUNTANTS:
                cal = calibrate_noise(target, DELTA, rate, steps, accountant)
                worst = max(worst, cal.seconds)
                flag = "  OVER" if cal.seconds > LIMIT_S else ""
                print(f"{name:8} {target:6g} {accountant:>5} {cal.accountant:>4} {cal.noise_multiplier:9.4f} "
                      f"{cal.epsilon:10.4f} {cal.seconds:8.3f}{flag}")
    print(f"max seconds per epsilon: {worst:.3f} (limit {LIMIT_S} s)")
    return 1 if worst > LIMIT_S else 0


if __name__ == "__main__":
    sys.exit(main())
