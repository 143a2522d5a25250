"""Database URLs as shown to people: never with a password."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")
_PARAM = re.compile(r"(?i)([?&](?:password|passwd|pwd)=)[^&\s]*")


def redact(text: str | None) -> str | None:
    """Every `scheme://user:password@` and `password=` query value in `text` with the password hidden."""
    if text is None:
        return None
    out = _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", str(text))
    return _PARAM.sub(lambda m: m.group(1) + "***", out)
