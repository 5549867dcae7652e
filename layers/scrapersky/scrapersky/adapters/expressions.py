"""One small builder for DynamoDB update and condition expressions: names and values get placeholders, so
no adapter hand-builds `#x{i}` loops and reserved words (`status`, `name`, `ttl`…) are always safe."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from scrapersky.adapters.ddb import ser

_TOKEN = re.compile(r"[:#][A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Update:
    """`Update().set(status="done").add(attempts=1).remove("claim").when("#status = :v", v=...)`.

    `kwargs()` gives UpdateExpression, ConditionExpression, ExpressionAttributeNames/Values for boto3."""

    _sets: list[str] = field(default_factory=list)
    _adds: list[str] = field(default_factory=list)
    _removes: list[str] = field(default_factory=list)
    _conditions: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def name(self, attribute: str) -> str:
        """The placeholder of an attribute name (the same name always gets the same placeholder)."""
        for placeholder, existing in self.names.items():
            if existing == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, v: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = ser(v)
        return placeholder

    def set(self, **fields: Any) -> Update:
        for k, v in fields.items():
            self._sets.append(f"{self.name(k)} = {self.value(v)}")
        return self

    def set_expr(self, attribute: str, expression: str, **vals: Any) -> Update:
        """SET attribute = expression, where `:x` in the expression stands for vals["x"]."""
        self._sets.append(f"{self.name(attribute)} = {self._bind(expression, vals)}")
        return self

    def add(self, **counters: int | float) -> Update:
        for k, v in counters.items():
            self._adds.append(f"{self.name(k)} {self.value(v)}")
        return self

    def remove(self, *attributes: str) -> Update:
        self._removes.extend(self.name(a) for a in attributes)
        return self

    def when(self, condition: str, **vals: Any) -> Update:
        """A condition; `#attr` stands for the attribute `attr`, `:x` for vals["x"]."""
        self._conditions.append(self._bind(condition, vals))
        return self

    def _bind(self, expression: str, vals: dict[str, Any]) -> str:
        """One pass over the expression: `:x` becomes vals["x"]'s placeholder, `#attr` the attribute's."""

        def sub(m: re.Match[str]) -> str:
            token = m.group(0)
            if token.startswith(":"):
                return self.value(vals[token[1:]])
            return token if token in self.names else self.name(token[1:])

        return _TOKEN.sub(sub, expression)

    @property
    def expression(self) -> str:
        parts = []
        if self._sets:
            parts.append("SET " + ", ".join(self._sets))
        if self._adds:
            parts.append("ADD " + ", ".join(self._adds))
        if self._removes:
            parts.append("REMOVE " + ", ".join(self._removes))
        return " ".join(parts)

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"UpdateExpression": self.expression}
        if self._conditions:
            out["ConditionExpression"] = " AND ".join(f"({c})" for c in self._conditions)
        if self.names:
            out["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            out["ExpressionAttributeValues"] = dict(self.values)
        return out
