"""What the emulator can be told to do: keys, error envelope, streaming policy, replies, faults.

The fault spec is a short string so that a flag (``--faults``), an env var and ``POST /_emulator/config`` can
all carry it. Syntax: comma-separated ``name=value`` pairs, whitespace ignored::

    busy=0.2         each relay request answers -1 (system busy) with probability 0.2 (seeded RNG)
    latency=0.1      add 0.1 s before every relay answer; a client that leaves meanwhile is not served or billed
                     (a relay that stops before the model ran)
    slow=0.6         the model takes 0.6 s before answering, and a client that leaves meanwhile is served and billed
                     anyway, as a real relay does (its upstream call keeps running): a non-streamed answer in full,
                     a stream for what was generated until the relay noticed the client had gone
    chunk_delay=0.05 sleep 0.05 s between stream chunks (also a config field of its own)
    truncate=3       streams stop after 3 content chunks: no finish chunk, no usage, no ``[DONE]``
    reset=3          streams break the connection after 3 content chunks (the client sees a dropped read)
    burst=5          more than 5 requests from one key within 1 s (emulator clock) answer 45011
    stream_error=3   streams send a relay error event (-1, in the configured envelope) after 3 content chunks, then end
    seed=7           seed of the RNG behind ``busy`` (default: the config's ``seed``)

An empty string means no faults. Unknown names are an error (a typo must not silently test nothing).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .._text import Text, labelled

__all__ = [
    "FaultSpecError",
    "EmulatorConfig",
    "Faults",
    "ErrorStyle",
    "ErrorStatus",
    "KeyTier",
    "FREE_DEMO_KEY",
    "PAID_DEMO_KEY",
    "FROZEN_DEMO_KEY",
    "demo_keys",
]

ErrorStyle = Literal["openai", "openai-str", "code-msg", "errcode"]
ErrorStatus = Literal["http", "200"]
KeyTier = Literal["free", "paid", "frozen"]

ERROR_STYLES: tuple[str, ...] = get_args(ErrorStyle)
ERROR_STATUSES: tuple[str, ...] = get_args(ErrorStatus)
KEY_TIERS: tuple[str, ...] = get_args(KeyTier)

# Fixed demo keys: deterministic so docs, snapshots and the CLI banner stay stable; the last four characters
# (what a masked key shows: ``baicai-…free``) say which is which.
FREE_DEMO_KEY = "baicai-emulator0demo0key000000000000000000000free"
PAID_DEMO_KEY = "baicai-emulator0demo0key000000000000000000000paid"
FROZEN_DEMO_KEY = "baicai-emulator0demo0key000000000000000000000frzn"


def demo_keys() -> dict[str, KeyTier]:
    return {FREE_DEMO_KEY: "free", PAID_DEMO_KEY: "paid", FROZEN_DEMO_KEY: "frozen"}


class FaultSpecError(ValueError):
    pass


@dataclass(frozen=True)
class Faults:
    """Injected misbehaviour; see the module docstring for the string syntax."""

    busy: float = 0.0
    latency: float = 0.0
    slow: float = 0.0
    chunk_delay: float = 0.0
    truncate: int | None = None
    reset: int | None = None
    burst: int | None = None
    stream_error: int | None = None
    seed: int | None = None

    @classmethod
    def parse(cls, spec: str | None) -> "Faults":
        if not spec or not spec.strip():
            return cls()
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, raw = part.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in types:
                raise FaultSpecError(
                    Text(f"无法识别的故障设置 {part!r}（可用：{', '.join(types)}，写法如 busy=0.2,reset=3）",
                         f"unknown fault setting {part!r} (known: {', '.join(types)}; e.g. busy=0.2,reset=3)")
                )
            try:
                values[name] = float(raw) if name in ("busy", "latency", "slow", "chunk_delay") else int(raw)
            except ValueError:
                raise FaultSpecError(
                    Text(f"故障设置 {name} 的值 {raw!r} 不是数字", f"the value {raw!r} of fault {name} is not a number")
                ) from None
        faults = cls(**values)
        if not 0.0 <= faults.busy <= 1.0:
            raise FaultSpecError(Text("busy 是 0 到 1 之间的概率", "busy is a probability between 0 and 1"))
        return faults

    def spec(self) -> str:
        """The string form, parseable by :meth:`parse` (round-trips)."""
        default = Faults()
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != getattr(default, f.name):
                parts.append(f"{f.name}={value:g}" if isinstance(value, float) else f"{f.name}={value}")
        return ",".join(parts)


@dataclass
class EmulatorConfig:
    """Everything the emulator can be set to. ``keys`` maps a key to its tier; ``None`` means the demo set."""

    keys: dict[str, KeyTier] | None = None
    error_style: ErrorStyle = "openai"
    error_status: ErrorStatus = "http"
    free_stream: bool = True
    """True during the relay's beta (free keys may stream); False afterwards (free streaming answers 48005)."""
    reply_tokens: int = 16
    """Length of a default reply in tokens (before ``max_tokens`` cuts it)."""
    chunk_delay: float = 0.0
    faults: Faults = field(default_factory=Faults)
    clock_offset: float = 0.0
    paid_balance: float = 10.0
    """CNY each paid key starts with."""
    seed: int = 0
    trust_forwarded_for: bool = False
    """Take the client IP from ``X-Forwarded-For`` (lets one test play several IPs over loopback)."""
    stream_errors: Literal["json", "sse"] = "json"
    """How an error answers a ``stream: true`` request: a JSON body, or one SSE ``data:`` event (some relays)."""

    def __post_init__(self) -> None:
        if isinstance(self.faults, str):
            self.faults = Faults.parse(self.faults)
        if self.keys is None:
            self.keys = demo_keys()
        self.validate()

    def validate(self) -> None:
        if self.error_style not in ERROR_STYLES:
            raise ValueError(
                Text(f"未知的错误格式 {self.error_style!r}（可选 {', '.join(ERROR_STYLES)}）",
                     f"unknown error style {self.error_style!r} (one of {', '.join(ERROR_STYLES)})")
            )
        if str(self.error_status) not in ERROR_STATUSES:
            raise ValueError(
                Text(f"未知的错误状态码方式 {self.error_status!r}（可选 http 或 200）",
                     f"unknown error status {self.error_status!r} (http or 200)")
            )
        self.error_status = str(self.error_status)  # type: ignore[assignment]
        for tier in (self.keys or {}).values():
            if tier not in KEY_TIERS:
                raise ValueError(
                    Text(f"密钥等级必须是 free、paid 或 frozen，而不是 {tier!r}",
                         f"a key tier must be free, paid or frozen, not {tier!r}")
                )
        if self.stream_errors not in ("json", "sse"):
            raise ValueError(Text("stream_errors 必须是 json 或 sse", "stream_errors must be json or sse"))
        if self.reply_tokens < 1:
            raise ValueError(Text("reply_tokens 至少为 1", "reply_tokens must be at least 1"))

    def replace(self, **changes: Any) -> "EmulatorConfig":
        """A copy with ``changes`` applied and checked (``faults`` may be a spec string)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(labelled("未知的模拟器设置", "unknown emulator settings", ', '.join(sorted(unknown))))
        if isinstance(changes.get("faults"), str):
            changes["faults"] = Faults.parse(changes["faults"])
        if "free_stream" in changes:
            changes["free_stream"] = _as_bool(changes["free_stream"])
        if "trust_forwarded_for" in changes:
            changes["trust_forwarded_for"] = _as_bool(changes["trust_forwarded_for"])
        new = dataclasses.replace(self, **changes)
        return new

    def public(self) -> dict[str, Any]:
        """JSON-safe view (keys masked, faults as their spec string)."""
        from ._util import mask_key

        out = dataclasses.asdict(self)
        out["faults"] = self.faults.spec()
        out["keys"] = {mask_key(k): t for k, t in (self.keys or {}).items()}
        return out


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
