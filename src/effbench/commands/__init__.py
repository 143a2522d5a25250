"""The command line's commands, one module per command group (as asv does): each module holds its
group's typer app or command, and the CLI (`effbench.cli.LAZY`) loads it when it is used. Options
that many commands take (--db, --out, --tag, --format) are declared once, in `options.py`."""
