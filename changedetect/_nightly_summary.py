"""What one night of the nightly job did (:class:`NightlySummary`, re-exported by :mod:`changedetect.nightly`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class NightlySummary:
    """What one nightly run did."""

    night: str
    new_acquisitions: int = 0
    pairs: int = 0
    new_violations: int = 0
    open_violations: int = 0
    #: earlier nights' violations taken out of the register tonight (``OUT/withdrawn-<night>.gpkg``/``.csv``):
    #: reported across seasons, not seen under the same sun (:func:`changedetect._merge.withdraw_unconfirmed`),
    #: or reported under what a late SCL masks (:mod:`changedetect._withdraw_masked`)
    withdrawn: list[str] = field(default_factory=list)
    #: how many of ``withdrawn`` for each reason: ``not seen under the same sun``, ``under a cloud a late
    #: SCL masks`` (a rerun's date now masks it: :mod:`changedetect._withdraw_masked`), ``now covered by a
    #: permit in the register`` (:mod:`changedetect._nightly_rematch`)
    withdrawn_reasons: dict[str, int] = field(default_factory=dict)
    #: earlier nights' violations whose status tonight's permit register changed (``exceeds_permit`` where a
    #: smaller permit was entered for an ``unlicensed`` one; their ``previous_status`` and ``status_since``:
    #: :mod:`changedetect._nightly_rematch`); those it now permits are withdrawn (``withdrawn_reasons``)
    status_changed: list[str] = field(default_factory=list)
    #: violations an inspector closed (``false_alarm``, ``resolved``) that tonight's detection found again with
    #: a ``first_seen`` not after the decision: kept closed, not opened again (:mod:`changedetect._nightly_decisions`)
    suppressed: list[str] = field(default_factory=list)
    #: violations an image check withdrew on an earlier night that an inspector's ``confirmed`` decision puts back
    #: in the open register under their ids (:func:`changedetect._nightly_decisions.reopened`)
    reopened: list[str] = field(default_factory=list)
    #: open violations seen across seasons that no same-season pair has checked yet (``same_sun``
    #: ``pending``: the next night with a same-season partner confirms or withdraws them; not one an inspector
    #: confirmed: :data:`changedetect._nightly_decisions.INSPECTED`)
    pending: int = 0
    areas: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    #: the registration reference (path, date, sha256; a band-per-file date's ``files``) of each area
    #: with new acquisitions
    references: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: problems that did not fail an area, one line each: unreadable files left out,
    #: a pinned reference that vanished or changed
    warnings: list[str] = field(default_factory=list)
    #: per area, each pair run tonight: ``before``, ``after`` and ``coverage_both_dates``, the share of
    #: the scene with data on both (a warning under half: :mod:`changedetect._nightly_coverage`)
    coverage: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: processed dates compared again tonight, each ``{"area", "date", "reason"}``: a scene
    #: classification (SCL) that arrived late or changed (:mod:`changedetect._nightly_scl`)
    reruns: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def __repr__(self) -> str:
        """The night in one line (ids, paths and references: :meth:`to_dict`)."""
        failed = f", {len(self.failed)} failed: {', '.join(sorted(self.failed))}" if self.failed else ""
        if len(failed) > 80:
            failed = failed[:77] + "..."
        n = len(self.warnings)
        again = f", {len(self.reruns)} dates again" if self.reruns else ""
        changed = f", {len(self.status_changed)} changed status" if self.status_changed else ""
        changed += f", {len(self.suppressed)} kept closed" if self.suppressed else ""
        changed += f", {len(self.reopened)} reopened" if self.reopened else ""
        return (f"NightlySummary({self.night}: {self.new_acquisitions} new acquisitions{again}, {self.pairs} pairs, "
                f"{self.new_violations} new violations, {self.open_violations} open ({self.pending} pending), "
                f"{len(self.withdrawn)} withdrawn{changed}; {len(self.areas)} areas{failed}"
                f"{f'; {n} warning' + 's' * (n > 1) if n else ''})")


__all__ = ["NightlySummary"]
