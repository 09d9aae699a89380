"""Image references parsed as Docker's distribution/reference does.

`alpine` is `docker.io/library/alpine:latest`; `host:5000/ns/name:tag` names a
registry by its first component when that component has a `.` or a `:`, or is
`localhost`; `name@sha256:<64 hex>` pins a digest. An uppercase letter in any
other component fails the lowercase rule of the path, first component included
(`UPPER/case`), as Docker 20.10's reference parser has it: Docker 24's takes
`UPPER` for a registry host and looks it up, which no registry needs.

The normalized full form (`docker.io/library/alpine:latest`) is what the store
keeps; the familiar form (`alpine:latest`, `localhost:5000/x:1`) is what users see.
"""

import re
from dataclasses import dataclass

from minictr.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_ANCHORED_ID_RE = re.compile(r"[a-f0-9]{64}")
_SHA256_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository with its registry: `docker.io/library/alpine`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as Docker shows it: `alpine`, `ns/x`, `localhost:5000/x`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        namespace, _, rest = self.path.partition("/")
        if namespace == OFFICIAL_NAMESPACE and "/" not in rest:
            return rest
        return self.path

    def full(self) -> str:
        """The normalized form kept in the store: `docker.io/library/alpine:latest`."""
        return self.name + self._suffix()

    def familiar(self) -> str:
        """The form users see: `alpine:latest`, `localhost:5000/x:1`."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        suffix = f":{self.tag}" if self.tag is not None else ""
        if self.digest is not None:
            suffix += f"@{self.digest}"
        return suffix

    def __str__(self) -> str:
        return self.full()


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalize a reference; `latest` is added when it has neither tag nor digest.

    Raises InvalidArgument naming what is wrong with it.
    """
    if not text:
        raise InvalidArgument("invalid reference format: the reference is empty")
    if _ANCHORED_ID_RE.fullmatch(text):
        raise InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    remainder, digest = _split_digest(text)
    remainder, tag = _split_tag(remainder)
    domain, path = _split_domain(remainder)
    _check_name(text, domain, path)
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def is_full_id(text: str) -> bool:
    """`sha256:<64 hex>`: an image id, never a name."""
    return bool(_SHA256_DIGEST_RE.fullmatch(text))


def _split_digest(text: str) -> tuple[str, str | None]:
    remainder, at, digest = text.partition("@")
    if not at:
        return text, None
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidArgument(f"invalid reference format: invalid digest `{digest}` in `{text}`")
    algorithm, _, hex_part = digest.partition(":")
    if algorithm == "sha256" and not _ANCHORED_ID_RE.fullmatch(hex_part):
        raise InvalidArgument(
            f"invalid reference format: a sha256 digest is 64 lowercase hex digits, in `{text}`"
        )
    return remainder, digest


def _split_tag(text: str) -> tuple[str, str | None]:
    # A `:` after the last `/` starts a tag; one before it is a registry port.
    colon = text.rfind(":")
    if colon == -1 or "/" in text[colon:]:
        return text, None
    tag = text[colon + 1:]
    if not _TAG_RE.fullmatch(tag):
        raise InvalidArgument(f"invalid reference format: invalid tag `{tag}` in `{text}`")
    return text[:colon], tag


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    # The first component is a registry when it looks like a host: it has a `.` or a `:`, or is
    # `localhost`. Anything else is a path component, which must be lowercase (checked below).
    if not slash or (not any(c in first for c in ".:") and first != "localhost"):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    return domain, path


def _check_name(text: str, domain: str, path: str) -> None:
    if not _DOMAIN_RE.fullmatch(domain):
        raise InvalidArgument(f"invalid reference format: invalid registry `{domain}` in `{text}`")
    if not _PATH_RE.fullmatch(path):
        if path.lower() != path and _PATH_RE.fullmatch(path.lower()):
            raise InvalidArgument(
                f"invalid reference format: repository name must be lowercase: `{text}`"
            )
        raise InvalidArgument(f"invalid reference format: invalid repository name in `{text}`")
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(
            f"invalid reference format: repository name must not be more than "
            f"{NAME_TOTAL_LENGTH_MAX} characters: `{text}`"
        )
