"""The ``[run]`` table of a run's configuration: how :func:`changedetect.pipeline.run` holds the
co-registered stack, splits a scene larger than one block and masks Sentinel-2 clouds.  Private: import :class:`RunConfig` from :mod:`changedetect.config`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunConfig:
    """How a run holds a large scene in memory, and whether it masks Sentinel-2 clouds.

    Parameters
    ----------
    block_px
        A co-registered scene of at most this many pixels a side runs whole.  A larger one runs
        detection and vectorisation block by block (cores of ``block_px`` a side, each read with
        at least ``halo_px`` around it, grown to the network's window grid so that every window over
        the core and its halo is the whole scene's: the blocks give the whole scene's rasters and
        footprints), so that memory is bounded by the block, not the scene: about
        3 GiB at the default 4096 px with three dates of four bands.  The normalisation statistics
        are the whole scene's; a footprint belongs to the block whose core holds its
        representative point.
    halo_px
        The least read around each block's core (clipped at the scene's edge): a building that
        crosses the core's edge is traced whole from the halo.  A footprint that reaches past what a
        block holds is traced again from a block grown up to 1.25 times the side (1.6 times the
        memory); one still cut then (its pieces of neighbouring blocks joined into one footprint)
        is named in a WARNING and marked in the column ``cut_by_block`` (raise ``block_px`` or
        ``halo_px``).
    hold_gib
        A co-registered stack (every date and band, float32) of at most this many GiB is computed
        once and held in memory.  A larger one is written once to scratch GeoTIFFs (in
        ``spill_dir``) and read back window by window: its warp is computed once, not at every
        read, and memory stays bounded.  A registration-only reference date (``register_to``)
        is not counted.  The same bound holds for what the later stages keep in memory of the
        scene (a pair's two dates for detection, each date for the presence check, the two dates
        for the change types): above it they read window by window.  A scene larger than
        ``block_px`` is read one block at a time, and each block is held whole: lower
        ``block_px`` to bound that too.
    spill_dir
        Where the scratch files of a stack larger than ``hold_gib`` go (a new folder in it,
        removed when the run ends, or, left by a killed run, by the next run into the same output
        folder); ``None`` = inside the run's output folder.  It needs free space for the stack's
        size (checked first: a clear error, not a full disk).
    cloud_mask
        A date delivered with a Sentinel-2 L2A scene classification (``*_SCL_20m`` beside its band
        files, or a band named SCL) has its no data, defective, cloud shadow, cloud and thin cirrus
        pixels read as no data (:mod:`changedetect.io.clouds`): a cloud on one date is not change.
        ``False`` (``--no-cloud-mask``) reads them as data.  Either way ``run.json``'s ``clouds``
        says how much of each such date is cloud, and a date mostly cloud is warned about.
    """

    block_px: int = 4096
    halo_px: int = 256
    hold_gib: float = 2.0
    spill_dir: str | None = None
    cloud_mask: bool = True

    def __post_init__(self) -> None:
        if self.block_px < 256:
            raise ValueError(f"block_px must be >= 256, got {self.block_px}")
        if not 0 <= self.halo_px <= self.block_px:
            raise ValueError(f"halo_px must be in [0, block_px={self.block_px}], got {self.halo_px}")
        if not self.hold_gib >= 0:
            raise ValueError(f"hold_gib must be >= 0 (GiB), got {self.hold_gib}")
