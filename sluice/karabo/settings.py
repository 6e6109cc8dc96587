"""The Karabo workflow's settings as one validated model.

The names follow the workflow's environment variables (``SKY_MODEL``,
``START_FREQ_HZ``...); ``as_env`` renders them for the Karabo container.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sluice.errors import SluiceInputError
from sluice.names import FilePrefix, ObsId, RucioNamespace, quoted

HOURLY_PATTERN = "%Y%m%dT%H%M%S_SKAMID_Karabo_test_hourly"
# Bounds that keep every derived size finite and every name a safe path segment.
MAX_FREQ_HZ = 1e12
MAX_OBS_HOURS = 24 * 365.0
MAX_TIME_STAMPS = 1_000_000  # the MIGHTEE L1 survey had 3,593 dumps
MAX_CHANNELS = 1_000_000
MAX_NPIXEL = 131_072
MAX_LIFETIME = 100 * 365 * 86400
_PRINTABLE = r"^[\x21-\x7e]*$"  # ASCII without spaces or control characters


class SkyModel(StrEnum):
    """Sky models the Karabo SKA-MID AA* workflow accepts."""

    MIGHTEE_L1 = "MIGHTEE_L1"


class Product(StrEnum):
    """Data products that can be ingested."""

    DIRTY = "dirty"
    CLEANED = "cleaned"
    VISIBILITY = "visibility"


PRODUCT_FILES = {
    Product.VISIBILITY: "measurements.ms",
    Product.DIRTY: "dirty.fits",
    Product.CLEANED: "cleaned.fits",
}


class KaraboSettings(BaseModel):
    """One simulation's settings (the workflow's env vars and product flags)."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    sky_model: SkyModel = SkyModel.MIGHTEE_L1
    phase_center_ra_deg: float = Field(150.12, ge=0, lt=360)
    phase_center_dec_deg: float = Field(2.21, ge=-90, le=90)
    start_freq_hz: float = Field(1.304e9, gt=0, le=MAX_FREQ_HZ)
    end_freq_hz: float = Field(1.375e9, gt=0, le=MAX_FREQ_HZ)
    freq_inc_hz: float = 17750000.0
    obs_length_hours: float = Field(4.0, gt=0, le=MAX_OBS_HOURS)
    num_time_stamps: int = Field(24, gt=0, le=MAX_TIME_STAMPS)
    start_date_and_time: datetime = datetime(2020, 4, 26, 16, 36, tzinfo=UTC)
    imaging_npixel: int = Field(2024, le=MAX_NPIXEL)
    imaging_cellsize: float | None = Field(None, gt=0, lt=math.pi)
    rucio_namespace: RucioNamespace = "testing"
    rucio_lifetime: int = Field(31536000, gt=0, le=MAX_LIFETIME)
    ivoid_authority: str = Field("test.skao", min_length=1, max_length=256, pattern=_PRINTABLE)
    ivoid_path: str = Field("/~", max_length=256, pattern=_PRINTABLE)
    obs_collection: str = Field("SKAO/SKAMID", min_length=1, max_length=256, pattern=_PRINTABLE)
    obs_id: ObsId
    file_prefix: FilePrefix = ""
    products: tuple[Product, ...] = (Product.DIRTY, Product.CLEANED)

    @classmethod
    def parse(cls, **values: object) -> KaraboSettings:
        """Validate settings; bad input raises ``SluiceInputError`` naming the input."""
        sky = values.get("sky_model")
        if sky is not None and sky not in {m.value for m in SkyModel}:
            allowed = ", ".join(m.value for m in SkyModel)
            raise SluiceInputError(f"sky_model: unknown sky model {sky!r} (allowed: {allowed})")
        try:
            settings = cls.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "settings"
            if first["type"] == "value_error":  # a name kind's own problem (sluice.names)
                problem = first["ctx"]["error"]
                raise SluiceInputError(f"{where} {quoted(first['input'])}: {problem}") from None
            raise SluiceInputError(f"{where}: {first['msg']}") from None
        settings.check()
        return settings

    def check(self) -> None:
        """The workflow's own consistency rules."""
        if self.end_freq_hz <= self.start_freq_hz:
            raise SluiceInputError(
                f"end_freq_hz: {self.end_freq_hz:g} must be greater than "
                f"start_freq_hz {self.start_freq_hz:g}"
            )
        if self.freq_inc_hz <= 0:
            raise SluiceInputError(f"freq_inc_hz: {self.freq_inc_hz:g} must be positive")
        if (self.end_freq_hz - self.start_freq_hz) / self.freq_inc_hz > MAX_CHANNELS:
            raise SluiceInputError(
                f"freq_inc_hz: {self.freq_inc_hz:g} gives more than {MAX_CHANNELS:,} channels "
                f"in {self.start_freq_hz:g}..{self.end_freq_hz:g} Hz"
            )
        if self.channels < 1:
            raise SluiceInputError(
                f"freq_inc_hz: {self.freq_inc_hz:g} is wider than the band "
                f"{self.start_freq_hz:g}..{self.end_freq_hz:g} Hz (0 channels)"
            )
        if self.imaging_npixel <= 0:  # the upper bound is the field's
            raise SluiceInputError(f"imaging_npixel: {self.imaging_npixel} must be positive")
        if not self.products:
            raise SluiceInputError("products: select at least one of dirty, cleaned, visibility")

    @property
    def channels(self) -> int:
        """floor((end - start) / increment), as the workflow computes it."""
        return math.floor((self.end_freq_hz - self.start_freq_hz) / self.freq_inc_hz)

    @property
    def selected(self) -> list[Product]:
        """The products to ingest, deduplicated, in a stable order."""
        return [p for p in Product if p in self.products]

    @property
    def built_images(self) -> list[Product]:
        """Images the workflow builds: ``cleaned`` implies the dirty image is built."""
        wanted = set(self.products)
        if Product.CLEANED in wanted:
            wanted.add(Product.DIRTY)
        return [p for p in (Product.DIRTY, Product.CLEANED) if p in wanted]

    def file_name(self, product: Product) -> str:
        return f"{self.file_prefix}{PRODUCT_FILES[product]}"

    def as_env(self, out_dir: str) -> dict[str, str]:
        """The Karabo workflow's environment variables."""
        env = {
            "SKY_MODEL": self.sky_model.value,
            "PHASE_CENTER_RA_DEG": repr(self.phase_center_ra_deg),
            "PHASE_CENTER_DEC_DEG": repr(self.phase_center_dec_deg),
            "START_FREQ_HZ": repr(self.start_freq_hz),
            "END_FREQ_HZ": repr(self.end_freq_hz),
            "FREQ_INC_HZ": repr(self.freq_inc_hz),
            "OBS_LENGTH_HOURS": repr(self.obs_length_hours),
            "NUM_TIME_STAMPS": str(self.num_time_stamps),
            "START_DATE_AND_TIME": start_text(self.start_date_and_time),
            "IMAGING_NPIXEL": str(self.imaging_npixel),
            "IMAGING_CELLSIZE": "None"
            if self.imaging_cellsize is None
            else repr(self.imaging_cellsize),
            "RUCIO_NAMESPACE": self.rucio_namespace,
            "RUCIO_LIFETIME": str(self.rucio_lifetime),
            "IVOID_AUTHORITY": self.ivoid_authority,
            "IVOID_PATH": self.ivoid_path,
            "OBS_COLLECTION": self.obs_collection,
            "OBS_ID": self.obs_id,
            "FILE_PREFIX": self.file_prefix,
            "OUT_DIR": out_dir,
        }
        return env

    def product_flags(self) -> list[str]:
        """The workflow's command-line product flags."""
        return [f"--{p.value}" for p in self.selected]


def start_text(value: datetime) -> str:
    """``START_DATE_AND_TIME`` as the real job writes it (UTC ``2020-04-26T16:36``)."""
    utc = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    seconds = utc.second or utc.microsecond
    return utc.strftime("%Y-%m-%dT%H:%M:%S" if seconds else "%Y-%m-%dT%H:%M")


def parse_start(text: str) -> datetime:
    """An ISO date and time (UTC unless an offset is given), as the workflow's pandas reads it."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SluiceInputError(
            f"start_date_and_time: {text[:40]!r} is not an ISO date and time "
            "(e.g. 2020-04-26T16:36)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def hourly_obs_id(scheduled: datetime) -> str:
    """``OBS_ID`` of a run scheduled at ``scheduled`` (the CronJob's naming scheme).

    The CronJob used the wall clock at pod start; deriving it from the
    *scheduled* time makes a rerun of the same slot reuse the same names (it
    resumes instead of producing a second set) while every slot differs.
    ``FILE_PREFIX`` defaults to ``<OBS_ID>_``.
    """
    return scheduled.astimezone(UTC).strftime(HOURLY_PATTERN)
