"""Render one date of the city into surface reflectance on a fine grid (numpy, vectorised).

The scene is drawn at ``resolution / oversample`` metres per pixel over the
reference grid plus a margin: ground cover (textured with fractal noise, the
vegetation greening with the season), roads with lane markings, debris of
demolitions, roofs (tile, metal, concrete; pitched roofs lit by the sun on one
slope and not the other; parapets, stair boxes, water tanks), cars and
motorbikes, tree crowns (dome-lit, clumpy, NIR-bright), then cast shadows from a
height map and the date's sun.  :mod:`~.registration` turns it into an image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

from changedetect.samplecity.changes import DateState
from changedetect.samplecity.layout import City
from changedetect.samplecity.raster import burn
from changedetect.samplecity.spec import Acquisition, CityConfig, along, rect
from changedetect.samplecity.texture import MATERIALS, fractal_noise, mix

COVER = ("natural", "bare", "path", "backyard", "yard", "court", "crop", "bank", "water", "sidewalk", "asphalt", "alley", "marking")
_PITCH = {"tile": 24.0, "metal": 13.0, "concrete": 0.0}
#: Share of light left in a cast shadow (sky light, bluer), per band.
SHADOW_LIGHT = np.array([0.27, 0.30, 0.40, 0.21], np.float32)[:, None]


@dataclass
class FineGrid:
    """The rendering grid: ``n`` x ``n`` pixels of ``step`` metres from local ``origin`` (both axes)."""

    n: int
    step: float
    origin: float

    @classmethod
    def of(cls, config: CityConfig) -> FineGrid:
        n = (config.size + 2 * config.margin) * config.oversample
        return cls(n, config.resolution / config.oversample, -config.margin * config.resolution)

    @property
    def transform(self) -> Affine:
        return Affine(self.step, 0.0, self.origin, 0.0, self.step, self.origin)

    def centres(self) -> np.ndarray:
        return self.origin + (np.arange(self.n, dtype=np.float32) + 0.5) * self.step

    def burn(self, shapes: list[tuple[shapely.Geometry, int]], *, dtype: str = "int32") -> np.ndarray:
        """Rasterise ``(geometry, value)`` pairs (later ones on top), 0 elsewhere."""
        if not shapes:
            return np.zeros((self.n, self.n), dtype)
        return burn(shapes, (self.n, self.n), self.transform, fill=0, dtype=dtype)


class StaticScene:
    """What every date shares: the cover map and the noise fields."""

    def __init__(self, city: City, rng: np.random.Generator) -> None:
        self.city = city
        self.grid = FineGrid.of(city.config)
        g = self.grid
        shape = (g.n, g.n)
        px_per_m = 1.0 / g.step
        self.low = fractal_noise(shape, rng, beta=3.2, scale_px=6 * px_per_m)
        self.mid = fractal_noise(shape, rng, beta=2.0, scale_px=1.0 * px_per_m)
        self.fine = fractal_noise(shape, rng, beta=0.6)
        self.leaf = fractal_noise(shape, rng, beta=1.6, scale_px=0.6 * px_per_m)
        self.cover = g.burn(self._cover_shapes(), dtype="uint8")
        c = g.centres()
        self.x, self.y = c[None, :], c[:, None]

    def _cover_shapes(self) -> list[tuple[shapely.Geometry, int]]:
        code = {name: i for i, name in enumerate(COVER)}
        shapes = [(geom, code[kind]) for geom, kind in self.city.cover]
        for road in sorted(self.city.roads, key=lambda r: r.kind != "alley"):
            if road.kind == "arterial":
                shapes.append((road.polygon, code["sidewalk"]))
                inner = rect(road.cx, road.cy, road.width - 6.0, road.length, road.angle)
                shapes.append((inner, code["asphalt"]))
                shapes += [(m, code["marking"]) for m in _markings(road.cx, road.cy, road.angle, road.length)]
            else:
                shapes.append((road.polygon, code["alley" if road.kind == "alley" else "asphalt"]))
        return shapes


def _markings(cx: float, cy: float, angle: float, length: float) -> list[shapely.Polygon]:
    """Dashed lane lines and a double centre line of an arterial."""
    out = [rect(*along((cx, cy), angle, 0.0, across=a), 0.15, length, angle) for a in (-0.2, 0.2)]
    for off in (-3.6, 3.6):
        for u in np.arange(-length / 2, length / 2, 9.0):
            out.append(rect(*along((cx, cy), angle, float(u), across=off), 0.15, 3.0, angle))
    return out


def sun_vector(acq: Acquisition) -> np.ndarray:
    """Unit vector towards the sun (east, north, up)."""
    az, el = math.radians(acq.sun_azimuth_deg), math.radians(acq.sun_elevation_deg)
    return np.array([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])


def render(static: StaticScene, state: DateState, acq: Acquisition, layers: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Surface reflectance ``(4, n, n)`` float32 of one date on the fine grid.

    ``layers``, when given, receives the fine-grid masks of what is not construction:
    ``canopy`` (tree crowns), ``vehicle`` (visible vehicles) and ``shadow`` (cast shadows).
    """
    img = _ground(static, acq)
    height = np.zeros(img.shape[1:], np.float32)
    _debris(static, state, img)
    _roofs(static, state, acq, img, height)
    vehicle = _cars(static, state, img, height)
    canopy = _trees(static, state, acq, img, height)
    shadow = cast_shadow(height, acq, static.grid.step)
    img[:, shadow] *= SHADOW_LIGHT
    if layers is not None:
        layers.update(canopy=canopy, vehicle=vehicle & ~canopy, shadow=shadow)
    return img


def _ground(st: StaticScene, acq: Acquisition) -> np.ndarray:
    green = acq.greenness
    veg = np.clip(0.5 + 0.55 * st.low + 0.25 * st.mid + 0.35 * (green - 0.5), 0.0, 1.0)
    grass = tuple(float(a + (b - a) * green) for a, b in zip(MATERIALS["dry_grass"], MATERIALS["green_grass"], strict=True))
    tex = 1.0 + 0.08 * st.mid + 0.09 * st.fine
    wet = 1.0 - 0.16 * green  # wet-season soil is darker
    img = mix(MATERIALS["soil"], grass, veg) * (tex * (wet + (1 - wet) * veg))[None]
    shrub = np.clip((st.leaf - 0.9) * 1.5, 0, 1) * (veg > 0.35)
    img += (np.asarray(MATERIALS["light_canopy"], np.float32)[:, None, None] * (0.75 + 0.1 * st.fine)[None] - img) * (0.8 * shrub)[None]
    ang = st.city.theta
    for i, name in enumerate(COVER):
        m = st.cover == i
        if i == 0 or not m.any():
            continue
        low, mid, fine, v = st.low[m], st.mid[m], st.fine[m], veg[m]
        if name in ("bare", "path"):
            col = np.asarray(MATERIALS["soil"], np.float32)[:, None] * ((1.12 if name == "path" else 1.0) + 0.08 * mid + 0.06 * fine)
        elif name == "yard":
            col = mix(MATERIALS["concrete"], MATERIALS["old_concrete"], np.clip(0.5 + 0.6 * low, 0, 1)) * (1 + 0.05 * fine)
        elif name == "backyard":
            col = mix(MATERIALS["soil"], MATERIALS["old_concrete"], np.clip(0.5 + mid, 0, 1))
            col = np.where(v > 0.6, mix(MATERIALS["soil"], grass, np.full_like(v, 0.8)), col) * (1 + 0.07 * mid + 0.05 * fine)
        elif name == "crop":
            rows, cols = np.nonzero(m)
            x, y = st.x[0, cols], st.y[rows, 0]
            stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (x * math.cos(ang) - y * math.sin(ang)) / 1.4)
            col = mix(MATERIALS["soil"], MATERIALS["green_grass"], stripes * (0.4 + 0.6 * green)) * (1 + 0.05 * fine)
        elif name == "bank":
            col = mix(grass, MATERIALS["green_grass"], np.clip(0.6 + 0.3 * mid, 0, 1)) * (1 + 0.07 * mid + 0.05 * fine)
        else:
            factor = {
                "court": 1 + 0.03 * fine,
                "water": 1 + 0.04 * mid,
                "sidewalk": 1.05 + 0.06 * fine,
                "asphalt": 1 + 0.10 * mid + 0.06 * fine,
                "alley": 0.95 + 0.08 * mid + 0.05 * fine,
                "marking": np.ones_like(fine),
            }[name]
            col = np.asarray(MATERIALS[name if name != "sidewalk" and name != "alley" else "concrete"], np.float32)[:, None] * factor
        if name in ("bare", "path", "backyard"):
            col = col * wet
        img[:, m] = col
    return img.astype(np.float32)


def _debris(st: StaticScene, state: DateState, img: np.ndarray) -> None:
    if not state.debris:
        return
    m = st.grid.burn([(g, 1 if kind == "rubble" else 2) for g, kind in state.debris], dtype="uint8")
    rub = m == 1
    speck = 1.0 + 0.18 * st.fine[rub] + 0.35 * st.mid[rub] + 0.25 * np.tanh(2 * st.leaf[rub])
    img[:, rub] = np.asarray(MATERIALS["rubble"], np.float32)[:, None] * speck[None]
    clr = m == 2
    img[:, clr] = np.asarray(MATERIALS["soil"], np.float32)[:, None] * (1.08 + 0.06 * st.mid[clr])[None]


def _roofs(st: StaticScene, state: DateState, acq: Acquisition, img: np.ndarray, height: np.ndarray) -> None:
    parts = sorted((r for b in state.buildings for r in b.roofs), key=lambda r: r.height)
    if not parts:
        return
    idx = st.grid.burn([(r.polygon, i + 1) for i, r in enumerate(parts)])
    m = idx > 0
    p = idx[m] - 1
    attr = np.array([[r.cx, r.cy, math.sin(r.angle), math.cos(r.angle), r.w / 2, r.d / 2, r.height, _PITCH[r.material]] for r in parts], np.float32)
    cols = np.array([r.color for r in parts], np.float32)
    mats = np.array([{"tile": 0, "metal": 1, "concrete": 2}[r.material] for r in parts])[p]
    gable = np.array([r.gable for r in parts])[p]
    rows, colsx = np.nonzero(m)
    xs, ys = st.x[0, colsx], st.y[rows, 0]
    dx, dy = xs - attr[p, 0], ys - attr[p, 1]
    sa, ca = attr[p, 2], attr[p, 3]
    u = dx * ca - dy * sa
    v = dx * sa + dy * ca
    pitch = np.radians(np.where(gable, np.maximum(attr[p, 7], 6.0), 0.0))
    sgn = np.sign(v)
    sun = sun_vector(acq)
    n_e = sgn * np.sin(pitch) * sa
    n_n = -sgn * np.sin(pitch) * ca
    shade = np.maximum(0.1, n_e * sun[0] + n_n * sun[1] + np.cos(pitch) * sun[2]) / sun[2]
    edge = np.minimum(attr[p, 4] - np.abs(u), attr[p, 5] - np.abs(v))
    rim = np.where(edge < 0.3, np.where(mats == 2, 1.12, 0.82), 1.0)
    ridge = np.where(gable & (np.abs(v) < 0.2), 1.08, 1.0)
    mid, fine = st.mid[m], st.fine[m]
    tex = np.select(
        [mats == 0, mats == 1],
        [1 + 0.05 * mid + 0.06 * fine, 1 + 0.03 * fine + 0.025 * np.sin(2 * np.pi * u / 0.76)],
        1 + 0.09 * mid + 0.04 * fine,
    )
    img[:, m] = cols[p].T * (shade * rim * ridge * tex)[None]
    leaf = st.leaf[m]
    plants = (mats == 2) & (leaf > 2.1) & (edge > 0.4)
    clutter = (mats == 2) & (fine > 2.3) & ~plants
    sub = img[:, m]
    sub[:, plants] = np.asarray(MATERIALS["light_canopy"], np.float32)[:, None] * (0.8 + 0.1 * leaf[plants])[None]
    sub[:, clutter] *= np.where(mid[clutter] > 0, 1.35, 0.6)[None]
    img[:, m] = sub
    height[m] = attr[p, 6]
    _tanks(st, state, img, height)


def _tanks(st: StaticScene, state: DateState, img: np.ndarray, height: np.ndarray) -> None:
    shapes = [(shapely.Point(t).buffer(0.45, quad_segs=4), 1) for b in state.buildings for t in b.tanks]
    if not shapes:
        return
    m = st.grid.burn(shapes, dtype="uint8") > 0
    img[:, m] = np.asarray(MATERIALS["tank"], np.float32)[:, None] * (1 + 0.05 * st.fine[m])[None]
    height[m] += 1.3


def _cars(st: StaticScene, state: DateState, img: np.ndarray, height: np.ndarray) -> np.ndarray:
    if not state.cars:
        return np.zeros(height.shape, bool)
    idx = st.grid.burn([(poly, i + 1) for i, (poly, _, _) in enumerate(state.cars)])
    m = (idx > 0) & (height == 0)
    p = idx[m] - 1
    cols = np.array([c for _, c, _ in state.cars], np.float32)
    hs = np.array([h for _, _, h in state.cars], np.float32)
    img[:, m] = cols[p].T
    height[m] = hs[p]
    return m


def _trees(st: StaticScene, state: DateState, acq: Acquisition, img: np.ndarray, height: np.ndarray) -> np.ndarray:
    g = st.grid
    drawn = np.zeros(height.shape, bool)
    sun = sun_vector(acq)
    leafy = np.array([1.0, 1.0, 1.0, 0.88 + 0.2 * acq.greenness], np.float32)  # more NIR in the wet season
    dark = np.asarray(MATERIALS["canopy"], np.float32) * leafy
    light = np.asarray(MATERIALS["light_canopy"], np.float32) * leafy
    for t in state.trees:
        hue = (t.tint * 7.31) % 1.0 * 0.55 if t.tint < 1.25 else 0.9
        canopy = (dark + (light - dark) * hue)[:, None, None]
        c0, c1 = int((t.x - t.r - g.origin) / g.step), int((t.x + t.r - g.origin) / g.step) + 2
        r0, r1 = int((t.y - t.r - g.origin) / g.step), int((t.y + t.r - g.origin) / g.step) + 2
        c0, r0, c1, r1 = max(c0, 0), max(r0, 0), min(c1, g.n), min(r1, g.n)
        if c1 <= c0 or r1 <= r0:
            continue
        dx = (st.x[:, c0:c1] - t.x) / t.r
        dy = (st.y[r0:r1, :] - t.y) / t.r
        ang = np.arctan2(dy, dx)
        lobes = 1 + 0.10 * np.sin(3 * ang + 7 * t.tint) + 0.07 * np.sin(5 * ang + 11 * t.tint)
        rho2 = (dx * dx + dy * dy) / lobes**2
        inside = rho2 < 1.0
        nz = np.sqrt(np.clip(1 - rho2, 0, 1))
        ch = t.h - 0.4 * t.r + 0.6 * t.r * nz
        draw = inside & (ch > height[r0:r1, c0:c1])
        if not draw.any():
            continue
        shade = np.clip((dx * sun[0] - dy * sun[1] + nz * sun[2]) / sun[2], 0.35, 1.35)
        clump = 1 + 0.28 * st.leaf[r0:r1, c0:c1]
        col = canopy * (min(t.tint, 1.1) * shade * clump)[None]
        win = img[:, r0:r1, c0:c1]
        win[:, draw] = col[:, draw]
        height[r0:r1, c0:c1][draw] = ch[draw]
        drawn[r0:r1, c0:c1] |= draw
    return drawn


def cast_shadow(height: np.ndarray, acq: Acquisition, step: float) -> np.ndarray:
    """Pixels in the cast shadow of anything taller on the sun's side (ray march on the height map)."""
    az, el = math.radians(acq.sun_azimuth_deg), math.radians(acq.sun_elevation_deg)
    sx, sy = math.sin(az), -math.cos(az)
    rise = step * math.tan(el)
    n = int(math.ceil(float(height.max()) / rise)) + 1
    shadow = np.zeros(height.shape, bool)
    h, w = height.shape
    for t in range(1, n + 1):
        ox, oy = int(round(t * sx)), int(round(t * sy))
        if abs(ox) >= w or abs(oy) >= h:
            break
        src = height[max(oy, 0) : h + min(oy, 0), max(ox, 0) : w + min(ox, 0)]
        dst = (slice(max(-oy, 0), h + min(-oy, 0)), slice(max(-ox, 0), w + min(-ox, 0)))
        shadow[dst] |= src - t * rise > height[dst] + 0.05
    return shadow
