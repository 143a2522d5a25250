"""The one assembly step: a prepared cell and what its measuring process handed back become a
Result (statistics, throughput, parity, stability, memory, energy, graph analysis, roofline,
profile, environment). Every launcher ends here."""

from __future__ import annotations

from typing import Any

import numpy as np

from effbench.core.cell import Measured
from effbench.core.stats import summarize
from effbench.harness import stability
from effbench.harness.env import harness_environment
from effbench.harness.parity import compare
from effbench.harness.placement import add_macs, fallback_verdict
from effbench.harness.prepare import PreparedCell
from effbench.harness.result import Energy, Memory, Result, Timing
from effbench.harness.telemetry import telemetry_warnings


def assemble(
    p: PreparedCell,
    m: Measured,
    cell_wall_s: float | None = None,
    remote: dict[str, Any] | None = None,
    extra_warnings: list[str] | None = None,
) -> Result:
    """`remote`: how the cell reached a device that is not this machine (transport, node ...); the
    environment is then the device's own, with this harness's beside it."""
    cfg = p.cfg
    samples_ms = m.samples_ns / 1e6
    summary = summarize(samples_ms)
    warnings: list[str] = list(p.warnings) + list(m.notes)
    runtime = dict(m.runtime_info)
    if m.throughput is not None:
        throughput = m.throughput["images_per_s"]
        runtime["requests_in_flight"] = m.throughput["requests_in_flight"]
        runtime.update(m.throughput.get("info") or {})
    else:
        throughput = cfg.batch_size * 1000.0 / summary.median if summary.median > 0 else None
    if remote:
        runtime.update(remote)

    env = dict(m.env)
    on_this_host = not remote
    diag, warns = stability.diagnose(
        samples_ms,
        cfg.threads,
        m.loadavg_before,
        m.loadavg_after,
        m.target_ci,
        m.reached_ci,
        m.target_met,
        (summary.ci95_low, summary.ci95_high),
        governor=env.get("governor"),
        usable_cpus=env.get("usable_cpus"),
        where="" if on_this_host else " on the device",
    )
    warnings.extend(warns)
    if m.precision_ran != cfg.precision:
        warnings.append(f"asked for {cfg.precision}, the runtime ran {m.precision_ran}")

    parity = None
    if cfg.parity and m.outputs and p.reference_path:
        reference = [np.load(p.reference_path)]
        parity = compare(m.outputs, reference, m.precision_ran, p.reference_runtime or "torch")
        if not parity.ok:
            warnings.append(
                f"parity failure: max rel err {parity.max_rel_err:.2e}, cosine {parity.cosine:.5f} "
                f"vs {parity.reference}"
            )

    energy = Energy.from_dict((m.after or {}).get("energy"))
    if energy is None:
        reason = (
            f"no energy meter on remote device {cfg.device} ({remote.get('transport')})"
            if remote
            else "energy not measured"
        )
        energy = Energy(False, reason)
    warnings.extend(f"energy: {w}" for w in energy.readings.get("warnings", []))
    extra: dict[str, Any] = {
        "artifact_path": p.artifact.path,
        "warmup": {"iterations": m.warmup_iters, "seconds": round(m.warmup_s, 3)},
        "measure_s": round(m.measure_s, 3),
        "settings": m.settings,
        "imported": m.imported,
    }
    if m.scenario_summary:
        extra["scenario"] = m.scenario_summary
    if m.telemetry:
        extra["telemetry"] = m.telemetry
        warnings.extend(telemetry_warnings(m.telemetry))
    if p.data_config:
        extra["data_config"] = p.data_config
    macs = ideal_ms = roofline_ms = efficiency = None
    analysis = None
    if p.analysis_onnx:
        from effbench.analysis.summary import cached_analysis, graph_summary, roofline_parts

        analysis = cached_analysis(p.analysis_onnx, m.precision_ran or cfg.precision)
        macs = int(analysis.macs)
        extra["graph"] = graph_summary(analysis)
        measured = summary.median
        if cfg.scenario == "throughput" and throughput:
            measured = cfg.batch_size * 1000.0 / throughput  # one inference of the batch while requests overlap
        spec = p.target.spec if p.target is not None else None
        roof = roofline_parts(analysis, spec, m.precision_ran or cfg.precision, measured, cfg.device)
        ideal_ms, roofline_ms, efficiency = roof.get("ideal_ms"), roof.get("roofline_ms"), roof.get("efficiency")
        if roof.get("analysis"):
            extra["analysis"] = roof["analysis"]
        warnings.extend(roof["warnings"])
    if m.profile_layers is not None or cfg.profile_iters:
        from effbench.analysis.profile import profile_report

        report, notes = profile_report(p, m, analysis, summary.median)
        extra["profile"] = report
        warnings.extend(notes)

    accuracy = quantization = None
    if p.evaluation is not None:
        from effbench.harness.evaluation import evaluation_parts

        accuracy, quantization, notes = evaluation_parts(p.evaluation, p, m.after or {}, cfg.threads, m.runtime_info)
        warnings.extend(notes)
    add_macs(runtime, analysis)
    fallback_error, note = fallback_verdict(runtime, cfg.precision, cfg.max_fallback)
    if note:
        warnings.append(note)
    env_out = harness_environment(env, cfg.device, remote)
    params = p.params or runtime.pop("params", None)
    return Result(
        model=p.model_id,
        backend=p.backend,
        device=cfg.device,
        scenario=cfg.scenario,
        batch_size=cfg.batch_size,
        precision=cfg.precision,
        status="failed" if fallback_error else "ok",
        error=fallback_error,
        precision_ran=m.precision_ran,
        latency=summary,
        throughput_per_s=throughput,
        iterations=int(samples_ms.size),
        timing=Timing(
            first_inference_ms=round(m.first_ns / 1e6, 4),
            load_s=round(m.load_s, 4),
            load_cold_s=None if p.artifact_cached else round(p.export_s + m.load_s, 4),
            load_cached_s=round(m.load_s, 4) if p.artifact_cached else None,
            export_s=round(p.export_s, 3),
            prepare_s=round(p.prepare_s, 3),
            warmup_s=round(m.warmup_s, 3),
            warmup_iters=m.warmup_iters,
            measure_s=round(m.measure_s, 3),
            cell_wall_s=round(cell_wall_s, 3) if cell_wall_s is not None else None,
        ),
        artifact_bytes=p.artifact_bytes,
        artifact_cached=p.artifact_cached,
        params=params,
        macs=macs,
        ideal_ms=ideal_ms,
        roofline_ms=roofline_ms,
        efficiency=efficiency,
        parity=parity,
        memory=Memory(**m.memory, artifact_bytes=p.artifact_bytes, device=m.device_memory),
        energy=energy,
        accuracy=accuracy,
        quantization=quantization,
        profiled=bool(cfg.profile_iters),
        stability=diag,
        warnings=tuple(dict.fromkeys(warnings + (extra_warnings or []))),
        threads=cfg.threads,
        cpus=env.get("pinned_cpus") if isinstance(cfg.cpus, str) else cfg.cpus,  # big / little: as resolved
        tag=cfg.tag,
        config=cfg.to_dict(),
        config_hash=cfg.config_hash(),
        runtime=runtime,
        env=env_out,
        samples_ms=tuple(np.round(samples_ms, 6).tolist()),
        extra=extra,
    )
