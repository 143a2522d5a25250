"""effbench: measure how fast, how hungry and how efficient a neural network really is."""

__version__ = "0.1.0"


def load_results(db: str | None = None, **filters):
    """Stored results as a pandas DataFrame (one row per result; see effbench.harness.store)."""
    from effbench.harness.store import Store

    return Store(db).dataframe(**filters)


__all__ = ["__version__", "load_results"]
