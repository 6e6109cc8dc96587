"""Minimum data-product sizes of a Karabo SKA-MID AA* simulation, and what they imply.

The formulas are the workflow README's: they count data only (no metadata,
flags or weights), so they are lower bounds. Images are npixel^2 x num_channels x 8 B
with num_channels = 1: the workflow builds MFS images (``combine_across_frequencies``),
one plane whatever the number of visibility channels.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from sluice.errors import SluiceInputError
from sluice.karabo.settings import KaraboSettings

STATIONS = 144  # SKA-MID AA*: 64 MeerKAT + 80 SKA dishes (ska-ost-array-config 2.3.1)
BASELINES = STATIONS * (STATIONS - 1) // 2  # 10,296, no autocorrelations
POLARISATIONS = 4  # OSKAR "Full"
VISIBILITY_BYTES = 8  # complex64
PIXEL_BYTES = 8  # float64
IMAGE_CHANNELS = 1  # MFS images: the channels are combined into one plane
SCRATCH_FACTOR = 2  # room for what the minimum leaves out (flags, weights, WSClean temporaries)
MEMORY_FACTOR = 2


class Estimate(BaseModel):
    """Minimum sizes of one simulation's products and the resources derived from them."""

    channels: int
    time_stamps: int
    baselines: int = BASELINES
    polarisations: int = POLARISATIONS
    npixel: int
    image_channels: int = IMAGE_CHANNELS
    images: int
    measurements: int
    ms_bytes: int
    image_bytes: int
    products_bytes: int
    scratch_bytes: int
    memory_bytes: int

    def rows(self) -> list[dict[str, str]]:
        """The estimate as a table (artifact and CLI)."""
        return [
            {"quantity": "channels", "value": f"{self.channels:,}"},
            {"quantity": "time stamps", "value": f"{self.time_stamps:,}"},
            {"quantity": "baselines", "value": f"{self.baselines:,}"},
            {"quantity": "polarisations", "value": f"{self.polarisations}"},
            {"quantity": "measurements", "value": f"{self.measurements:,}"},
            {"quantity": "measurement set (min)", "value": _size(self.ms_bytes)},
            {"quantity": "image channels (MFS)", "value": str(self.image_channels)},
            {"quantity": "image (min, each)", "value": _size(self.image_bytes)},
            {"quantity": "images built", "value": str(self.images)},
            {"quantity": "all products (min)", "value": _size(self.products_bytes)},
            {"quantity": "temporary volume needed", "value": _size(self.scratch_bytes)},
            {"quantity": "memory request", "value": _size(self.memory_bytes)},
        ]


def _size(nbytes: int) -> str:
    return f"{nbytes:,} B ({nbytes / 2**20:,.1f} MiB)"


def estimate(settings: KaraboSettings, *, min_memory_bytes: int = 0) -> Estimate:
    """channels x time stamps x baselines x polarisations x 8 B; npixel^2 x 1 x 8 B per image."""
    channels = settings.channels
    measurements = channels * settings.num_time_stamps * BASELINES * POLARISATIONS
    ms_bytes = measurements * VISIBILITY_BYTES
    image_bytes = settings.imaging_npixel**2 * IMAGE_CHANNELS * PIXEL_BYTES
    images = len(settings.built_images)
    products = ms_bytes + images * image_bytes
    return Estimate(
        channels=channels,
        time_stamps=settings.num_time_stamps,
        npixel=settings.imaging_npixel,
        images=images,
        measurements=measurements,
        ms_bytes=ms_bytes,
        image_bytes=image_bytes,
        products_bytes=products,
        scratch_bytes=SCRATCH_FACTOR * products,
        memory_bytes=max(min_memory_bytes, _round_up_mi(MEMORY_FACTOR * products)),
    )


def _round_up_mi(nbytes: int) -> int:
    return math.ceil(nbytes / 2**20) * 2**20


def refuse_if_too_big(found: Estimate, volume_bytes: int) -> None:
    """Refuse a run whose temporary data cannot fit the configured volume, with the numbers."""
    if found.scratch_bytes > volume_bytes:
        raise SluiceInputError(
            f"scratch_volume: the estimate needs {_size(found.scratch_bytes)} "
            f"= {SCRATCH_FACTOR} x products {found.products_bytes:,} B (measurement set "
            f"{found.ms_bytes:,} B + {found.images} image(s) x {found.image_bytes:,} B) "
            f"but the temporary volume holds {_size(volume_bytes)}"
        )
