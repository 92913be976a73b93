"""The CloudCatalog file-registry format (HelioCloud's spec, v1.x), as pydantic models.

A bucket holding datasets has ``catalog.json`` at its root; each dataset entry points at
an ``index`` prefix holding one file-list per year, ``<index><id>_YYYY.csv``, whose first
columns are exactly ``start, stop, datakey, filesize``. HelioCloud's own client
(``cloudcatalog`` on PyPI) reads what these models write, and we read what it reads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

SPEC_VERSION = "1.0"
INDEX_COLUMNS = ("start", "stop", "datakey", "filesize")
FILETYPES = frozenset(
    {"fits", "csv", "cdf", "netcdf3", "netcdf4", "hdf5", "datamap", "txt", "binary", "other"}
)

#: Restricted ISO 8601 in UTC: ``yyyy-mm-ddThh:mm:ss.sssZ``, truncation allowed, Z required.
TIME_PATTERN = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d{1,9})?)?)?)?)?)?Z$")

DatasetId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]
IndexPrefix = Annotated[str, StringConstraints(pattern=r"^(s3|https?)://.+/$")]


def format_time(moment: datetime) -> str:
    """A catalog time string, to the second: ``2026-11-01T00:20:00Z``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """A naive UTC datetime from a (possibly truncated) catalog time string."""
    if not TIME_PATTERN.match(text):
        raise ValueError(f"time {text!r} is not restricted ISO 8601 UTC (yyyy-mm-ddThh:mm:ss.sssZ)")
    digits = text[:-1]
    fill = "0000-01-01T00:00:00"
    if len(digits) < len(fill):
        digits += fill[len(digits) :]
    if len(digits) == 7:  # yyyy-mm
        digits += "-01"
    main, _, fraction = digits.partition(".")
    moment = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S")
    if fraction:
        moment = moment.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    return moment


def index_name(dataset_id: str, year: int, indextype: str = "csv") -> str:
    """The spec's name of a dataset's index file for a year: ``<id>_<YYYY>.csv``."""
    suffix = {"csv": "csv", "csv-zip": "csv.zip", "parquet": "parquet"}[indextype]
    return f"{dataset_id}_{year}.{suffix}"


def _check_time(value: str) -> str:
    parse_time(value)
    return value


class Status(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: int = 1200
    message: str = "OK"


class CatalogEntry(BaseModel):
    """One dataset in a bucket's catalog.json."""

    model_config = ConfigDict(extra="allow")

    id: DatasetId
    index: IndexPrefix
    title: str
    start: str
    stop: str
    modification: str
    indextype: Literal["csv", "csv-zip", "parquet"] = "csv"
    filetype: str = "fits"
    description: str | None = None
    resource: str | None = None
    creation: str | None = None
    expiration: str | None = None
    verified: str | None = None
    citation: str | None = None
    contact: str | None = None
    about: str | None = None
    multiyear: bool | None = None

    _times = field_validator("start", "stop", "modification")(_check_time)

    @field_validator("filetype")
    @classmethod
    def _known_filetypes(cls, value: str) -> str:
        unknown = [kind for kind in value.split(",") if kind.strip() not in FILETYPES]
        if unknown:
            raise ValueError(f"unknown filetype {', '.join(unknown)} (one or more of {sorted(FILETYPES)})")
        return value

    def index_key(self, year: int) -> str:
        """The URL of this dataset's index file for ``year``."""
        return self.index + index_name(self.id, year, self.indextype)

    @property
    def start_time(self) -> datetime:
        return parse_time(self.start)

    @property
    def stop_time(self) -> datetime:
        return parse_time(self.stop)


class BucketCatalog(BaseModel):
    """A bucket's ``catalog.json``."""

    model_config = ConfigDict(extra="allow")

    version: str = SPEC_VERSION
    endpoint: str = Field(pattern=r"^(s3|https?)://.+/$")
    name: str
    egress: str = "none"
    status: Status = Field(default_factory=Status)
    contact: str
    description: str | None = None
    citation: str | None = None
    catalog: list[CatalogEntry] = Field(default_factory=list)

    def entry(self, dataset_id: str) -> CatalogEntry:
        for entry in self.catalog:
            if entry.id == dataset_id:
                return entry
        known = ", ".join(entry.id for entry in self.catalog) or "none"
        raise KeyError(f"no dataset {dataset_id!r} in catalog {self.name!r} (datasets: {known})")


class RegistryEntry(BaseModel):
    """One bucket in the global registry."""

    model_config = ConfigDict(extra="allow")

    endpoint: str = Field(pattern=r"^(s3|https?)://.+/$")
    name: str
    provider: str = "aws"
    region: str = "us-east-1"


class Registry(BaseModel):
    """The global registry: the buckets that hold CloudCatalogs (a catalog of catalogs)."""

    model_config = ConfigDict(extra="allow")

    version: str = SPEC_VERSION
    modificationDate: str = Field(default_factory=lambda: format_time(datetime.now(UTC)))  # noqa: N815 (the spec's name)
    registry: list[RegistryEntry] = Field(default_factory=list)

    _time = field_validator("modificationDate")(_check_time)

    def entry(self, name_or_endpoint: str) -> RegistryEntry:
        for entry in self.registry:
            if name_or_endpoint in (entry.name, entry.endpoint, entry.endpoint.rstrip("/")):
                return entry
        known = ", ".join(entry.name for entry in self.registry) or "none"
        raise KeyError(f"no bucket {name_or_endpoint!r} in the registry (buckets: {known})")


ParameterType = Literal["string", "integer", "double", "isotime", "boolean"]


class Parameter(BaseModel):
    """An extra index column, declared in the dataset's ``<id>.json``."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    type: ParameterType = "string"
    units: str | None = None
    desc: str | None = None


class DatasetInfo(BaseModel):
    """A dataset's optional ``<index><id>.json``: the extra index columns, in order."""

    model_config = ConfigDict(extra="allow")

    version: str = SPEC_VERSION
    parameters: list[Parameter] = Field(default_factory=list)

    @field_validator("parameters")
    @classmethod
    def _no_reserved_or_repeated(cls, parameters: list[Parameter]) -> list[Parameter]:
        names = [p.name for p in parameters]
        reserved = sorted(set(names) & set(INDEX_COLUMNS))
        if reserved:
            raise ValueError(f"{', '.join(reserved)} are the required columns, not extra ones")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"parameter {', '.join(repeated)} declared more than once")
        return parameters


def info_name(dataset_id: str) -> str:
    """The name of a dataset's info file, next to its index files."""
    return f"{dataset_id}.json"


def describe(error: ValueError) -> str:
    """A pydantic error as one line of ``field.path: message`` parts; other errors as they are."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    return "; ".join(
        f"{'.'.join(str(p) for p in item['loc']) or '(top)'}: {item['msg']}" for item in errors()
    )
