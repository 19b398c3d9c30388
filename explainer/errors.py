"""User-facing errors: each says what happened and what to do about it."""

from __future__ import annotations


class ExplainerError(ValueError):
    """A problem the user can fix. `str(e)` is a complete sentence with the fix."""

    def __init__(self, what: str, fix: str = ""):
        self.what = what
        self.fix = fix
        super().__init__(f"{what} {fix}".strip())


class ModelLoadError(ExplainerError):
    """A model could not be loaded (no network, unknown id, unsupported, out of memory)."""


class PromptError(ExplainerError):
    """The prompt cannot be traced as it is (empty, say)."""


class RangeError(ExplainerError):
    """An index outside what the model has: a layer, head, neuron, position or token id."""


class SettingError(ExplainerError):
    """A setting out of its range (a token limit, a count of guesses, a training setting)."""


class LessonError(ExplainerError):
    """A lesson file that cannot be used as it is: its message names the file, the step and the field."""

    def __init__(self, what: str, fix: str = "", source: str = "", step: int | None = None, field: str = ""):
        super().__init__(what, fix)
        self.source, self.step, self.field = source, step, field
