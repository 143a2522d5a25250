"""Stability diagnostics: reasons a number may not be trusted, recorded with every result."""

from __future__ import annotations

import numpy as np

from effbench.core.stats import median_ci

CV_LIMIT = 0.10


def diagnose(
    samples_ms: np.ndarray,
    threads_used: int | None,
    load_before: float | None,
    load_after: float | None,
    target_ci: float | None,
    reached_ci: float | None,
    target_met: bool | None,
    ci: tuple[float, float] | None = None,
    governor: str | None = None,
    usable_cpus: int | None = None,
    where: str = "",
) -> tuple[dict, list[str]]:
    """`ci`: the median's 95% CI when the caller already has it; `governor`, `usable_cpus`: of the
    machine that measured (`where` names it in the warnings, e.g. " on the device")."""
    warnings: list[str] = []
    x = np.asarray(samples_ms, dtype=np.float64)
    diag: dict = {
        "cv": None,
        "drift": None,
        "governor": governor,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "target_ci": target_ci,
        "reached_ci": reached_ci,
        "unstable": False,
    }
    if x.size >= 2:
        cv = float(x.std(ddof=1) / x.mean()) if x.mean() > 0 else 0.0
        diag["cv"] = cv
        if cv > CV_LIMIT:
            warnings.append(f"high variation: CV {cv:.0%} > {CV_LIMIT:.0%}")
    if x.size >= 20:
        half = x.size // 2
        m1, m2 = float(np.median(x[:half])), float(np.median(x[half:]))
        lo, hi = ci if ci is not None else median_ci(x)
        drift = m2 - m1
        diag["drift"] = {"first_half_median": m1, "second_half_median": m2, "ci_width": hi - lo}
        if abs(drift) > (hi - lo):
            warnings.append(f"drift: median moved {drift / m1:+.1%} between the halves (more than the CI)")
    if governor is not None and governor != "performance":
        warnings.append(f"CPU governor{where} is {governor!r}, not 'performance'")
    ncpu = usable_cpus or 1
    busy = max(v for v in (load_before, load_after, 0.0) if v is not None)
    # the run itself accounts for up to `threads_used` of the load average
    if busy - (threads_used or 1) > 0.5 * ncpu:
        warnings.append(f"other processes busy{where}: load average {busy:.1f} on {ncpu} CPUs")
    if target_ci is not None and target_met is False:
        diag["unstable"] = True
        warnings.append(f"unstable: median CI ±{reached_ci:.1%} never reached the target ±{target_ci:.1%}")
    return diag, warnings
