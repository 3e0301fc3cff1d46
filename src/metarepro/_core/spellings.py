"""metafor's other spellings of the same options, read as metafor reads them.

* ``method="FE"`` is metafor's older name of the equal-effects model ``"EE"``;
* ``level=0.95`` (a proportion) is ``level=95``. metafor reads a level at or below 0.5 as α
  (``level=0.05`` is a 95 % interval); that reading is easy to get wrong either way, so it is refused
  with the percent to write instead.
"""

from __future__ import annotations

ALIASES = {"FE": "EE"}
# metafor's escalc measures from counts (a 2x2 table per row) and from one group's events (a proportion); here, not
# in stats/effects_binary, so that reading a config needs no numpy
TABLE_MEASURES = ("OR", "RR", "RD", "PETO")
PROPORTION_MEASURES = ("PR", "PLN", "PLO", "PAS", "PFT")
BINARY_MEASURES = (*TABLE_MEASURES, *PROPORTION_MEASURES)  # counts: a 2x2 table or a proportion per row


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def percent_level(level) -> float:
    """A confidence level in percent: 95 stays 95, a proportion 0.95 becomes 95."""
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 100:
        raise ValueError(f"level is a confidence level in percent, between 0 and 100 (e.g. 95), not {_short(level)}")
    if level >= 1:
        return level
    if level > 0.5:
        return 100 * level
    raise ValueError(
        f"level {level:g} is ambiguous: metafor reads it as α, a {100 * (1 - level):g}% interval; "
        f"write the level in percent ({100 * (1 - level):g} or {100 * level:g})"
    )


def metafor_spellings(method, level):
    """(method, level) with metafor's aliases resolved; the level in percent."""
    return ALIASES.get(method, method), percent_level(level)


def add_aliases(cls, names: dict) -> None:
    """Give ``cls`` read-only attributes ``new`` that read the attribute ``names[new]``: another spelling of a
    result's field (metafor's, or an older one kept for the code and files that use it)."""
    for new, existing in names.items():
        setattr(cls, new, property(lambda self, existing=existing: getattr(self, existing),
                                   doc=f"Another name of ``{existing}``."))  # fmt: skip
