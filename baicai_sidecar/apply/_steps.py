"""Apps configured by hand in their own settings screen: one small adapter each, the exact fields to fill.

These apps keep provider settings in an encrypted store or a database we must not write (VS Code's secret storage,
Cursor's account settings, a browser extension's storage), so ``apply`` prints the steps. Each adapter's
docstring names the app version and the page its labels were taken from.
"""

from __future__ import annotations

from ._base import Adapter, Extras, Options
from ._model import Env, Message, Target

__all__ = ["StepsAdapter"]


class StepsAdapter(Adapter):
    kind = "instructions"

    def steps(self, target: Target) -> list[Message]:
        raise NotImplementedError

    def notes(self, target: Target) -> list[Message]:
        return []

    def extras(self, target: Target, env: Env, options: Options) -> Extras:
        return Extras(instructions=self.steps(target), notes=self.notes(target))
