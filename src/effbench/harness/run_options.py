"""A command line's run options -> RunConfig cells, a bad value named by its flag.

The flags are declared once, on RunConfig's fields (harness/flags.Flag); `bench run`, `bench ab`,
`bench max-qps` and `bench profile` read them through here.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from effbench.errors import UsageError
from effbench.harness.config import RunConfig
from effbench.harness.flags import Flag


def flags_of(config: type[RunConfig] = RunConfig) -> dict[str, Flag]:
    """field name -> its Flag, in declaration order (fields without one are set otherwise)."""
    out = {}
    for name, info in config.model_fields.items():
        flag = next((m for m in info.metadata if isinstance(m, Flag)), None)
        if flag is not None:
            out[name] = flag
    return out


def bad_value(flag: str, value: Any, why: str, example: str | None = None) -> UsageError:
    return UsageError(f"invalid {flag} {value!r}: {why}" + (f" (e.g. {example})" if example else ""))


def parse_opts(opts: list[str] | None) -> dict[str, str]:
    """--opt KEY=VALUE (repeatable) -> {KEY: VALUE}; the backend types them."""
    out = {}
    for o in opts or []:
        if "=" not in o or not o.split("=", 1)[0].strip():
            raise UsageError(f"--opt expects KEY=VALUE, got {o!r} (e.g. --opt streams=2)")
        k, v = o.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def make_config(config: type[RunConfig] = RunConfig, /, **fields: Any) -> RunConfig:
    """A RunConfig from field values; a bad value becomes one line naming its flag."""
    from pydantic import ValidationError

    try:
        return config(**fields)
    except ValidationError as e:
        err = e.errors()[0]
        if not err["loc"]:  # a rule over several options (a scenario's own check) names them itself
            raise UsageError(str(err["msg"]).removeprefix("Value error, ")) from None
        name = str(err["loc"][0])
        flag = flags_of(config).get(name)
        why = str(err["msg"]).removeprefix("Value error, ")
        if why[1:2].islower():  # "Input should be ..." reads on after a colon; "CPU(s) ..." and "5 C" keep their case
            why = why[0].lower() + why[1:]
        raise bad_value(
            flag.name if flag else "--" + name.replace("_", "-"), err.get("input"), why, flag.example if flag else None
        ) from None


def parse_flag(flag: Flag, value: Any) -> Any:
    """The field value of one flag's command-line value (a list for a flag that expands)."""
    if value is None:
        return [None] if flag.expands else None
    if flag.parse is not None:
        try:
            value = flag.parse(value)
        except ValueError as e:
            raise bad_value(flag.name, value, str(e), flag.example) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise bad_value(flag.name, value, "must be a finite number", flag.example)
    return value if not flag.expands or isinstance(value, list) else [value]


def cells_from_flags(values: dict[str, Any], config: type[RunConfig] = RunConfig, **fields: Any) -> list[RunConfig]:
    """The cells of one command line: `values` by field name as the command line gave them (text for a
    flag with a parser), `fields` the values set otherwise (options, tag). One cell per value of each
    expanding flag."""
    from effbench.core.scenarios import SCENARIOS

    flags = flags_of(config)
    parsed = {name: parse_flag(flags[name], value) for name, value in values.items()}
    scenario = parsed.get("scenario")
    for name, value in parsed.items():
        flag = flags[name]
        users = [s for s, sc in SCENARIOS.items() if name in sc.own_settings]
        if flag.elsewhere and value is not None and users and scenario in SCENARIOS and scenario not in users:
            why = f"only --scenario {' | '.join(users)} {flag.elsewhere}"
            raise bad_value(flag.name, values[name], why, flag.example)
    lists = {name: parsed.pop(name) for name in list(parsed) if flags[name].expands}
    return [
        make_config(config, **parsed, **dict(zip(lists, combination)), **fields)
        for combination in itertools.product(*lists.values())
    ]
