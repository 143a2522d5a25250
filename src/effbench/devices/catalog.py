"""The device catalog: peak FLOP/s per precision and memory bandwidth, each with its source.

Which file is read (first that applies): an explicit path, $EFFBENCH_DEVICES, ./devices.yaml,
the packaged default_devices.yaml. See that file for the format.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from effbench import yamlfile
from effbench.devices.remote import RemoteTarget
from effbench.errors import UsageError, close_matches, safe_name

ENV_VAR = "EFFBENCH_DEVICES"
LOCAL_FILE = "devices.yaml"
DEFAULT_FILE = Path(__file__).with_name("default_devices.yaml")

Kind = Literal["cpu", "gpu", "npu"]
RoofSource = Literal["spec", "calibrated", "best", "max"]

_ALIASES = {
    "float32": "fp32",
    "f32": "fp32",
    "float": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "f16": "fp16",
    "bfloat16": "bf16",
    "float8": "fp8",
    "e4m3": "fp8",
    "e5m2": "fp8",
    "qint8": "int8",
    "quint8": "int8",
    "uint8": "int8",
    "i8": "int8",
}


def normalize_precision(precision: str) -> str:
    """'float16' -> 'fp16', 'bfloat16' -> 'bf16', ...; unknown names come back lower-cased."""
    p = str(precision).strip().lower()
    return _ALIASES.get(p, p)


class Peak(BaseModel):
    """One rate (FLOP/s, OPS/s or bytes/s) and where it comes from."""

    model_config = ConfigDict(extra="forbid")

    value: float = Field(gt=0)
    source: str = "unspecified"

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, data: Any) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"value": data}
        return data

    @field_validator("value", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):  # pydantic would take `true` as 1.0
            raise ValueError("not a number")
        return v


class SshSpec(BaseModel):
    """Where a remote device is reached (every key the remote runner reads, and no other)."""

    model_config = ConfigDict(extra="forbid")

    host: str  # "host" or "user@host"
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    python: str | None = None
    workdir: str | None = None
    options: list[str] | str | None = None  # extra ssh client arguments
    connect_timeout: float | None = None
    client: str | None = None  # the ssh program (default: ssh)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"host": data} if isinstance(data, str) else data

    @field_validator("identity_file")
    @classmethod
    def _key_exists(cls, v: str | None) -> str | None:
        if v and not Path(v).expanduser().is_file():
            raise ValueError(f"ssh key {v} does not exist (create it with ssh-keygen, or fix the path)")
        return v


class Calibration(BaseModel):
    """Measured rates written by `bench devices calibrate --save`."""

    model_config = ConfigDict(extra="allow")

    timestamp: str
    method: str
    threads: int | None = None
    peak_flops: dict[str, Peak] = Field(default_factory=dict)
    memory_bandwidth: Peak | None = None


class DeviceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Kind
    description: str = ""
    peak_flops: dict[str, Peak] = Field(default_factory=dict)
    memory_bandwidth: Peak | None = None
    match: list[str] = Field(default_factory=list)
    ssh: SshSpec | None = None
    detect: bool = False
    calibrated: Calibration | None = None
    # How the detected peaks were derived (filled by detect.py, never read from the file).
    detected: dict[str, Any] | None = None

    @field_validator("peak_flops", mode="after")
    @classmethod
    def _normalize_keys(cls, v: dict[str, Peak]) -> dict[str, Peak]:
        return {normalize_precision(k): p for k, p in v.items()}

    @field_validator("match", mode="before")
    @classmethod
    def _match_str(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    def peak_entry(self, precision: str, source: RoofSource = "best") -> Peak | None:
        """The peak for a precision. source: 'spec' (the file's or detected value),
        'calibrated' (measured), 'best' (calibrated when measured, else spec), 'max' (the larger of
        the two: a roof must be an upper bound, and either one can fall short of it, a detected peak
        at a hypervisor's nominal clock, a calibration that did not reach the peak).

        A 'tf32' request on a device without TF32 units falls back to fp32, which is what such
        a matmul runs at. Nothing else falls back: a missing bf16 is not assumed equal to fp16
        (a V100 has fp16 tensor cores but no bf16), so list both where the spec says so.
        """
        p = normalize_precision(precision)
        for key in (p, "fp32") if p == "tf32" else (p,):
            cal = self.calibrated.peak_flops.get(key) if self.calibrated else None
            spec = self.peak_flops.get(key)
            chosen = {"spec": spec, "calibrated": cal, "best": cal or spec, "max": _higher(cal, spec)}[source]
            if chosen is not None:
                return chosen
        return None

    def peak(self, precision: str, source: RoofSource = "best") -> float | None:
        entry = self.peak_entry(precision, source)
        return entry.value if entry else None

    def bandwidth_entry(self, source: RoofSource = "best") -> Peak | None:
        cal = self.calibrated.memory_bandwidth if self.calibrated else None
        return {
            "spec": self.memory_bandwidth,
            "calibrated": cal,
            "best": cal or self.memory_bandwidth,
            "max": _higher(cal, self.memory_bandwidth),
        }[source]

    def bandwidth(self, source: RoofSource = "best") -> float | None:
        entry = self.bandwidth_entry(source)
        return entry.value if entry else None

    @property
    def origin(self) -> str:
        """'calibrated', 'detected' or 'spec': where the best numbers come from."""
        if self.calibrated:
            return "calibrated"
        return "detected" if self.detect else "spec"


# --- loading -----------------------------------------------------------------------------


def _higher(a: Peak | None, b: Peak | None) -> Peak | None:
    if a is None or b is None:
        return a or b
    return a if a.value >= b.value else b


def resolve_path(path: str | Path | None = None) -> Path:
    """The devices file to read: explicit path, $EFFBENCH_DEVICES, ./devices.yaml, packaged."""
    for candidate, what in ((path, "--devices-file"), (os.environ.get(ENV_VAR) or None, ENV_VAR)):
        if candidate is not None:
            p = Path(candidate).expanduser()
            if not p.is_file():
                raise UsageError(f"devices file not found: {p} (from {what})")
            return p
    local = Path.cwd() / LOCAL_FILE
    return local if local.is_file() else DEFAULT_FILE


def load_catalog(path: str | Path | None = None) -> dict[str, DeviceSpec]:
    """All devices in the resolved file, validated; detect: true entries get this machine's peaks."""
    p = resolve_path(path)
    try:
        st = p.stat()
        key = (str(p), st.st_mtime_ns, st.st_size)
        if key not in _LOADED:
            _LOADED[key] = parse_catalog(p.read_text(), str(p))
    except OSError as e:
        raise UsageError(f"cannot read devices file {p}: {e.strerror or e}") from None
    return dict(_LOADED[key])


_LOADED: dict[tuple, dict[str, DeviceSpec]] = {}  # parsed once per file version in a process


def parse_catalog(text: str, filename: str = LOCAL_FILE) -> dict[str, DeviceSpec]:
    try:
        raw = yamlfile.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"{filename}: not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("devices"), dict):
        raise UsageError(f"{filename}: expected a top-level 'devices:' mapping of device name to entry")
    return {str(name): _parse_entry(str(name), entry, filename) for name, entry in raw["devices"].items()}


def _parse_entry(name: str, entry: Any, filename: str) -> DeviceSpec:
    safe_name(name, "device name", filename)  # it names files (predictors, caches) and farm resources
    where = f"{filename}: device '{name}'"
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: entry must be a mapping with at least 'kind' (got {_got(entry)})")
    if "name" in entry or "detected" in entry:
        key = "name" if "name" in entry else "detected"
        raise UsageError(f"{where}: '{key}' is not a key you can set (the name is the mapping key)")
    try:
        spec = DeviceSpec.model_validate({**entry, "name": name})
    except ValidationError as e:
        raise UsageError(f"{where}: {_describe(e)}") from None
    if spec.ssh is not None:  # the whole ssh block, as the remote runner will read it: now, not when a cell runs
        try:
            RemoteTarget.from_spec(spec)
        except UsageError as e:
            raise UsageError(f"{filename}: {e}") from None
    if spec.detect:
        if spec.kind != "cpu":
            raise UsageError(f"{where}: detect: true is only supported for kind cpu (got kind {spec.kind})")
        spec = _merge_detected(spec)
    return spec


def _merge_detected(spec: DeviceSpec) -> DeviceSpec:
    from effbench.devices.detect import detect_cpu

    found = detect_cpu(spec.name)
    # Values written in the file win over detected ones: that is how a user corrects detection.
    return spec.model_copy(
        update={
            "description": spec.description or found.description,
            "peak_flops": {**found.peak_flops, **spec.peak_flops},
            "memory_bandwidth": spec.memory_bandwidth or found.memory_bandwidth,
            "match": spec.match or found.match,
            "detected": found.detected,
        }
    )


_EXPECTED = {
    "float_parsing": "must be a positive number",
    "float_type": "must be a positive number",
    "greater_than": "must be a positive number",
    "value_error": "must be a positive number",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list of strings",
    "literal_error": "must be one of cpu, gpu, npu",
}


def _describe(e: ValidationError) -> str:
    """First pydantic error as 'key.path must be ... (got ...)', plus a count of the rest."""
    errors = e.errors()
    err = errors[0]
    loc = ".".join(str(x) for x in err["loc"]) or "entry"
    kind = err["type"]
    if kind == "missing":
        msg = f"'{loc}' is missing"
        if loc == "kind":
            msg += " (expected one of cpu, gpu, npu)"
    elif kind == "extra_forbidden":
        parent, _, key = loc.rpartition(".")
        allowed = _allowed_keys(parent)
        close = close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        msg = f"unknown key '{loc}' ({hint}expected one of: {', '.join(allowed)})"
    elif kind == "value_error" and err.get("ctx", {}).get("error") and "not a number" not in str(err["ctx"]["error"]):
        msg = f"{loc}: {err['ctx']['error']}"
    else:
        expected = _EXPECTED.get(kind, err["msg"][:1].lower() + err["msg"][1:])
        msg = f"{loc} {expected} (got {_got(err.get('input'))})"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return msg


def _allowed_keys(parent: str) -> list[str]:
    if parent.startswith("peak_flops.") or parent == "memory_bandwidth":
        return list(Peak.model_fields)
    if parent == "ssh":
        return list(SshSpec.model_fields)
    return [k for k in DeviceSpec.model_fields if k not in ("name", "detected")]


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- lookup ------------------------------------------------------------------------------


def get_device(name: str, path: str | Path | None = None, catalog: dict[str, DeviceSpec] | None = None) -> DeviceSpec:
    catalog = load_catalog(path) if catalog is None else catalog
    if name in catalog:
        return catalog[name]
    close = difflib.get_close_matches(name, list(catalog), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UsageError(
        f"unknown device '{name}'{hint} (known: {', '.join(catalog)}; "
        "add it to devices.yaml or see `bench devices list`)"
    )


def match_device(catalog: dict[str, DeviceSpec], identifier: str) -> str | None:
    """The catalog name whose `match` substring occurs in a CUDA device name or CPU model.
    The longest matching substring wins, so 'H200 NVL' beats 'H200' once both are listed."""
    ident = identifier.lower()
    best: tuple[int, str] | None = None
    for name, spec in catalog.items():
        for m in spec.match:
            if m and m.lower() in ident and (best is None or len(m) > best[0]):
                best = (len(m), name)
    return best[1] if best else None


def local_device_name(catalog: dict[str, DeviceSpec]) -> str:
    """The entry that stands for this machine's CPU (normally 'local-cpu')."""
    for name, spec in catalog.items():
        if spec.detect and spec.kind == "cpu":
            return name
    return "local-cpu"
