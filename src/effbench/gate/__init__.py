"""The regression gate: baselines, statistical comparison, verdicts, reports (docs/gate.md).

For the core: `effbench.commands.gate` holds the CLI (`baseline_app`, `gate_command`);
`effbench.gate.verdict.ab_verdicts` judges A against B from records measured in one session, and
`effbench.gate.render` prints the resulting report.
"""
