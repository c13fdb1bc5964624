"""The `--set` line of a trial's overrides, for report pages: `harma.results.overrides` is its one home."""
from harma.results.overrides import format_value, set_command, set_tokens

__all__ = ["format_value", "set_command", "set_tokens"]
