"""What a mitigated model changes against its baseline, as the zoo declares it (`gradzoo.zoo.fixes`).

Tables and the report name each pair's fix from the model's registration, never from its name, so a
pair named anything at all is described the same way. A record of a model this install does not register
(records from another version, or a user's own registry) has no declared fix: it shows as none.
"""

from __future__ import annotations


def fixes_of(model: str) -> tuple[str, ...]:
    """The fix keys `model` declares (`zoo.get_spec(model).fixes`); `()` for a baseline or an unknown model."""
    from gradzoo import zoo

    try:
        return tuple(zoo.get_spec(model).fixes)
    except ValueError:  # not registered here
        return ()


def fixes_in_words(model: str) -> str:
    """The declared fixes as a reader reads them: `"He-normal init (variance 2/fan_in), ..."`; `""` if none."""
    from gradzoo import zoo

    return ", ".join(zoo.FIXES[key].name for key in fixes_of(model))
