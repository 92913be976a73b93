"""Names, patterns and the strict base model shared by every section of platform.yaml."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
IMAGE_PATTERN = (
    r"^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9._-]+)*"
    r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
)
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
URL_PATTERN = r"^https?://[^\s/]+(/.*)?$"

#: What each pattern means, in words: validation messages say this, not the regex.
PATTERN_MEANINGS = {
    USERNAME_PATTERN: "a username is 1-64 lower-case letters, digits, '.', '_', '@' or '-', "
    "starting with a letter or digit",
    NAME_PATTERN: "a name is 1-63 lower-case letters, digits or '-', "
    "starting and ending with a letter or digit",
    IMAGE_PATTERN: "an image reference is repository:tag, with an explicit tag that is not 'latest'",
    BUCKET_PATTERN: "a bucket name is 3-63 lower-case letters, digits, '.' or '-'",
    REGION_PATTERN: "a region looks like us-east-1",
    URL_PATTERN: "an endpoint is an http:// or https:// URL",
}

#: A JupyterHub username. Lower case, because JupyterHub normalizes names to lower case
#: and a roster with ``Alice`` and ``alice`` must not become two accounts.
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]

#: A name used as a key (image, profile, group, archive). DNS-label-like, so the same
#: name is a valid Kubernetes label value and a valid Helm/Ansible key.
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


def _not_latest(reference: str) -> str:
    if reference.rsplit(":", 1)[-1] == "latest":
        raise ValueError(f"{reference!r}: the tag 'latest' moves; pin a version tag")
    return reference


#: An image reference with an explicit tag and no ``latest``: a notebook and its Dask
#: workers must run the very same image, which a moving tag cannot promise.
ImageReference = Annotated[str, StringConstraints(pattern=IMAGE_PATTERN), AfterValidator(_not_latest)]

BucketName = Annotated[str, StringConstraints(pattern=BUCKET_PATTERN)]


class StrictModel(BaseModel):
    """Base of every section: unknown keys are errors (a typo must never be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
