"""A city's dates rendered in memory: the one seeded sequence that :func:`generate` writes.

:func:`city_and_changes` is the vector side without the permit register (what
:func:`~changedetect.samplecity.plan` builds first); :func:`render_dates` draws each date, adds
its misregistration and sensor noise, and yields it with what the truth needs.  The generated
training cities' chips (``changedetect.training.generated.city_chips``) read the same dates
without writing them, so both stay equal however the generator changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from changedetect.samplecity.changes import Change, DateState
from changedetect.samplecity.layout import City
from changedetect.samplecity.registration import Misregistration
from changedetect.samplecity.spec import Acquisition, CityConfig


@dataclass
class RenderedDate:
    """One date of a city: ``image`` ``(bands, n, n)`` uint8 as observed (misregistered, noisy)."""

    index: int
    acquisition: Acquisition
    image: np.ndarray
    misregistration: Misregistration
    state: DateState
    layers: dict[str, np.ndarray]  # the renderer's nuisance layers (fine grid)


def city_and_changes(config: CityConfig) -> tuple[City, list[Change]]:
    """The city's layout and its planned changes (seeded by ``config.seed``)."""
    from changedetect.samplecity import changes as ch
    from changedetect.samplecity import layout

    city = layout.plan_city(config, np.random.default_rng([config.seed, 1]))
    return city, ch.plan_changes(city, np.random.default_rng([config.seed, 2]), len(config.acquisitions))


def render_dates(config: CityConfig, city: City, changes: list[Change]) -> Iterator[RenderedDate]:
    """Each acquisition of ``config`` drawn in turn (one date in memory at a time)."""
    from changedetect.samplecity import changes as ch
    from changedetect.samplecity import registration, scene

    seed, n = config.seed, len(config.acquisitions)
    states = ch.date_states(city, changes, np.random.default_rng([seed, 3]), n)
    static = scene.StaticScene(city, np.random.default_rng([seed, 4]))
    reg_rng = np.random.default_rng([seed, 5])
    for k, acq in enumerate(config.acquisitions):
        layers: dict[str, np.ndarray] = {}
        refl = scene.render(static, states[k], acq, layers)
        mis = registration.draw_misregistration(reg_rng, config.size, reference=k == 0)
        img = registration.observe(refl, config, mis, acq, np.random.default_rng([seed, 6, k]))
        del refl
        yield RenderedDate(k, acq, img, mis, states[k], layers)


__all__ = ["RenderedDate", "city_and_changes", "render_dates"]
