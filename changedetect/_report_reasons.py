"""The report's wording of a violation's reason and of a pair's low coverage, in the report's
language (private; :mod:`changedetect._report_card`, :mod:`changedetect._report_coverage`).

The violation list's ``reason`` is an English sentence built from one template per status
(:mod:`changedetect._match_reasons`); the list keeps it, for machines and for the record.  The
report reads the sentence back (the numbers, dates, permits and types it quotes) and says it again
with :mod:`changedetect._report_text`'s templates: in English that is the sentence itself
(``tests/test_report_lang.py`` checks the round trip), in Vietnamese its translation.  A sentence
that no template reads (a list written by another version, or edited by hand) is shown as it is.
The low-coverage words of :func:`changedetect.io.clouds.coverage_why` are said again the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from changedetect._report_text import TEXT, num, term

_EN = TEXT["en"]
_KINDS = {_EN[f"kind.{k}"]: k for k in ("new", "altered", "demolished")}
_WHAT = r"(?P<kind>" + "|".join(map(re.escape, _KINDS)) + r") of (?P<area>\S+) m²"
_N = r"(\S+?)"
_WITHIN = (r"(?:within (?P<m>\S+) m of its outline \(edge tolerance\)"
        r"|within tolerance \((?P<m2>\S+) m² or (?P<pct>\S+)%\))")

#: (template key, pattern of the English sentence); the first that matches the whole reason
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [(key, re.compile(p)) for key, p in [
    ("reason.unlicensed", _WHAT + r": no permit covers it"),
    ("reason.revoked", _WHAT + r": only a revoked permit \((?P<p>.+)\) covers it"),
    ("reason.type_mismatch", _WHAT + r" under an? (?P<t>.+?) permit \((?P<p>.+)\); it needs an? (?P<need>.+) permit"),
    ("reason.before_permit", _WHAT + r" first seen (?P<s>\S+), before permit (?P<p>.+) was issued on (?P<d>\S+)"),
    ("reason.permit_expired", _WHAT + r" first seen (?P<s>\S+), after permit (?P<p>.+) expired on (?P<d>\S+)"),
    ("reason.exceeds_permit", r"built (?P<a>\S+) m² against a permit for (?P<b>\S+) m² \((?P<p>.+)\): "
                              r"(?P<e>\S+) m² \((?P<r>\S+)%\) outside the permitted footprint"),
    ("reason.permitted", _WHAT + r" within permit (?P<p>.+) \((?P<t>[^(),]+), valid (?P<i>\S+) to (?P<u>\S+)\); "
                         r"(?P<e>\S+) m² outside, " + _WITHIN),
    ("reason.exceeds_area", r"built (?P<a>\S+) m² against a permit for (?P<b>\S+) m² \((?P<p>.+)\): "
                            r"(?P<e>\S+) m² \((?P<r>\S+)%\) over the permitted area"),
    ("reason.permitted_area", _WHAT + r" within permit (?P<p>.+) \((?P<t>[^(),]+), valid (?P<i>\S+) to "
                              r"(?P<u>\S+)\); (?P<e>\S+) m² over the permitted area, " + _WITHIN),
]]
_IN_TIME = re.compile(r"; it expired between (?P<b>\S+) \(not built\) and (?P<s>\S+) \(built\): "
                      r"it may have been built in time$")
#: a permit drawn as its lot (changedetect._match_lots): the clause before any _IN_TIME
_LOT = re.compile(r"; permit (?P<lp>.+?)'s outline \((?P<o>\S+) m²\) is (?P<x>\S+) times its permitted area "
                  r"\((?P<pa>\S+) m²\): a lot rather than a building, so the building's area is compared with the "
                  r"permitted area$")
#: the groups that are numbers (said with the language's decimal mark)
_NUMBERS = {"area", "a", "b", "e", "r", "m", "m2", "pct", "o", "x", "pa"}


def reason(sentence: str, lang: str) -> str:
    """``sentence`` (a ``reason`` of the violation list) in ``lang``; unread, as it is."""
    t = TEXT[lang]
    tail = ""
    late = _IN_TIME.search(sentence)
    if late:
        sentence, tail = sentence[: late.start()], t["reason.in_time"].format(**late.groupdict())
    lot = _LOT.search(sentence)
    if lot:
        said = {k: num(v, lang) if k in _NUMBERS else v for k, v in lot.groupdict().items()}
        sentence, tail = sentence[: lot.start()], t["reason.lot"].format(**said) + tail
    for key, pattern in _PATTERNS:
        m = pattern.fullmatch(sentence)
        if m is None:
            continue
        g = {k: (num(v, lang) if k in _NUMBERS else v) for k, v in m.groupdict().items() if v is not None}
        if "kind" in g:
            g["what"] = t["reason.what"].format(kind=t[f"kind.{_KINDS[g['kind']]}"], area=g["area"])
        if "t" in g:
            g["t"] = _permit_type(g["t"], lang, article=key == "reason.type_mismatch")
        if "need" in g:
            g["need"] = _permit_type(g["need"], lang, article=True)
        if key in ("reason.permitted", "reason.permitted_area"):
            g["why"] = t["reason.edge"].format(**g) if "m" in g else t["reason.tolerance"].format(**g)
        return t[key].format(**g) + tail
    return sentence + (lot.group(0) if lot else "") + (late.group(0) if late else "")


def _permit_type(words: str, lang: str, *, article: bool) -> str:
    """``new_construction or extension`` in ``lang`` (English: with its article where the sentence has one)."""
    said = TEXT[lang]["reason.or"].join(term(lang, "permit_type", w) if lang != "en" else w
                                         for w in words.split(" or "))
    if lang == "en" and article:
        return f"{'an' if said[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {said}"
    return said


_WHY: list[tuple[re.Pattern[str], Callable[[re.Match[str], Mapping[str, str], str], str]]] = [
    (re.compile(r"(?P<date>\S+) is (?P<pct>\S+) % masked by its Sentinel-2 scene classification \(SCL\): "
                r"(?P<classes>.*?)(?=; |: |$)"),
     lambda m, t, lang: t["why.masked"].format(date=m["date"], pct=num(m["pct"], lang)) + _classes(m["classes"], lang)),
    (re.compile(r"(?P<date>\S+)'s tiles have no data over (?P<pct>\S+) % of the scene"),
     lambda m, t, lang: t["why.tiles"].format(date=m["date"], pct=num(m["pct"], lang))),
    (re.compile(re.escape(_EN["why.clearer"])), lambda m, t, lang: t["why.clearer"]),
    (re.compile(r"check that (?P<scl>'[^']*'|its SCL) is this date's SCL, of the bands' tile"),
     lambda m, t, lang: t["why.check_scl"].format(scl=t["why.its_scl"] if m["scl"] == "its SCL" else m["scl"])),
    (re.compile(re.escape(_EN["why.check_tiles"])), lambda m, t, lang: t["why.check_tiles"]),
]


def coverage_why(words: str, lang: str) -> str:
    """:func:`changedetect.io.clouds.coverage_why`'s words in ``lang`` (English: as they are)."""
    if lang == "en":
        return words
    t = TEXT[lang]
    for pattern, say in _WHY:
        words = pattern.sub(lambda m, say=say: say(m, t, lang), words)  # type: ignore[misc]
    return words


def _classes(listed: str, lang: str) -> str:
    """``75 % no data (0), 20 % cloud shadow (3)`` in ``lang`` (the classes' names hold commas)."""
    names = sorted((k[4:] for k in TEXT["en"] if k.startswith("scl.")), key=len, reverse=True)
    pattern = r"(\S+) % (" + "|".join(map(re.escape, names)) + r")(?=, |$)"
    return re.sub(pattern, lambda m: f"{num(m[1], lang)} % {scl_class(m[2], lang)}", listed)


def scl_class(name: str, lang: str) -> str:
    """An SCL class's name (:data:`changedetect.io.clouds.SCL_NAMES`) in ``lang``."""
    return TEXT[lang].get(f"scl.{name}", name)


__all__ = ["coverage_why", "reason", "scl_class"]
