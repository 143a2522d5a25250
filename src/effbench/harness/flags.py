"""How a run setting appears on the command line, declared on its RunConfig field:

    threads: Annotated[int | None, Field(ge=1), Flag("--threads", help="...", example="--threads 2")] = None

`bench run`'s options are generated from these (commands/run.py), and a bad value is one line naming
the flag with its example (harness/run_options.py). The parsers turn the command line's text into
the field's value; each raises ValueError with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]  # "--model", "-m"; a boolean's pair is "--parity/--no-parity"
    help: str
    example: str | None = None  # shown after a bad value: "(e.g. --batch 1,8,32)"
    parse: Callable[[str], Any] | None = None  # text -> value (None: the field's type, as click reads it)
    expands: bool = False  # the parser returns a list: one cell per value (--batch 1,8,32)
    # a scenario's own setting given to another scenario is refused with "only --scenario X <elsewhere>"
    # (None: dropped silently, so that one list of options may serve several scenarios)
    elsewhere: str | None = None

    def __init__(
        self,
        *names: str,
        help: str,
        example: str | None = None,
        parse: Callable[[str], Any] | None = None,
        expands: bool = False,
        elsewhere: str | None = None,
    ) -> None:
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "help", help)
        object.__setattr__(self, "example", example)
        object.__setattr__(self, "parse", parse)
        object.__setattr__(self, "expands", expands)
        object.__setattr__(self, "elsewhere", elsewhere)

    @property
    def name(self) -> str:
        """The flag as messages name it: --parity for --parity/--no-parity."""
        return self.names[0].split("/")[0]


def parse_percent(text: str | float | None) -> float | None:
    """'1%' -> 0.01, '0.01' -> 0.01, '1' -> 0.01 (a number >= 1 is a percentage), None -> None."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        v = float(text)
    else:
        t = str(text).strip()
        try:
            v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
        except ValueError:
            raise ValueError(f"{text!r} is not a percentage") from None
        if not t.endswith("%") and v >= 1:
            v /= 100
    if not math.isfinite(v):
        raise ValueError(f"{text!r} is not a finite percentage")
    return v


_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float | None) -> float | None:
    """'10m' -> 600.0, '60s' -> 60.0, '1.5h' -> 5400.0, '250ms' -> 0.25, '3' -> 3.0 (seconds)."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        v = float(text)
    else:
        t = str(text).strip().lower()
        num = t.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = t[len(num) :].strip() or "s"
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r}; use ms, s, m or h")
        try:
            v = float(num) * _UNITS[unit]
        except ValueError:
            raise ValueError(f"{text!r} is not a duration") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return v


def parse_int_list(text: str, what: str = "value", allow_ranges: bool = False, minimum: int = 1) -> list[int]:
    """'1,8,32' -> [1, 8, 32]; with allow_ranges '0-3' -> [0, 1, 2, 3]. Strict: no empty items,
    nothing below `minimum`."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"empty item in {text!r}")
        lo, sep, hi = part.partition("-")
        try:
            if sep and allow_ranges and lo:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a {what}") from None
    bad = [v for v in out if v < minimum]
    if bad:
        raise ValueError(f"{bad[0]} is below {minimum}")
    return out


# The command line's parsers. A number is left to the field's own range check (its message names the
# range); a number that is not finite is refused where the flags are read.


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("not a number") from None


def seconds(text: str) -> float | None:
    """A duration: seconds, or a number with a unit (10m, 60s, 1.5h, 250ms)."""
    try:
        return float(text)
    except ValueError:
        return parse_duration(text)


def milliseconds(text: str) -> float | None:
    """A latency bound in ms: '15ms', '0.015s', or a bare number of milliseconds."""
    try:
        value = float(text)
    except ValueError:
        return (parse_duration(text) or 0.0) * 1000
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a positive latency")
    return value


def percent_points(text: str) -> float | None:
    """'1%' or 0.01 -> 1.0: a share in percentage points."""
    share = parse_percent(text)
    return None if share is None else share * 100


def cpus(text: str) -> list[int] | str | None:
    """A CPU list (0,1 or 0-3), or big / little: a big.LITTLE cluster, resolved on the device."""
    if text in ("big", "little"):
        return text
    try:
        return parse_int_list(text, "CPU index", allow_ranges=True, minimum=0) if text else None
    except ValueError as e:
        raise ValueError(f"{e}, or big / little on a big.LITTLE CPU") from None


def int_list(what: str, item: str, expected: str) -> Callable[[str], list[int | None]]:
    """A comma list of distinct integers (one cell each); empty: [None], the model's own."""

    def parse(text: str) -> list[int | None]:
        if text is None or text == "":
            return [None]
        try:
            values: list[int | None] = list(parse_int_list(str(text), what))
        except ValueError as e:
            raise ValueError(f"{e}; {expected}") from None
        if len(set(values)) != len(values):
            raise ValueError(f"a {item} is listed twice")
        return values

    return parse
