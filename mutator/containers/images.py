"""The training images: build them from `images/`, list them, and check that Docker is there.

Each kind of image (`keras`, `sklearn`) is a Dockerfile in `images/KIND/` whose final stage holds
a virtualenv with the project installed, runs as the non-root user `mutator` (uid 1000) in
`/trial`, and trains `/trial/train.py` when started with no command (see `images/README.md`).

Builds use a temporary context holding only what the Dockerfiles copy (the project, not the
user's runs or virtualenvs), so they are fast and reproducible. A CA bundle for `pip` (a
TLS-inspecting proxy's) goes into that context as `images/build-ca/ca.crt`; only the build stage
reads it, and the final image copies nothing but `/opt/venv` from there.

The Docker SDK is imported only when a function needs it: `mutate preview` must not pay for it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mutator.errors import MutatorError, UsageError

if TYPE_CHECKING:
    import docker

KINDS = ("keras", "sklearn")
DEFAULT_PREFIX = "mutator-"
DEFAULT_BASE_IMAGE = "python:3.11-slim"  # the Dockerfiles' own default; needs a registry
IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"
# What the Dockerfiles COPY, relative to the repository root; nothing else goes into a context.
CONTEXT_ENTRIES = ("pyproject.toml", "README.md", "mutator", "rules", "images")
CONTEXT_IGNORED = ("__pycache__", "*.pyc", ".mutator", "*.egg-info", "*.keras", "*.crt", "*.pem")
CA_IN_CONTEXT = "images/build-ca/ca.crt"
# Proxy settings are build arguments Docker predefines: they reach RUN, never the image history.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
PING_TIMEOUT = 10

ProgressCallback = Callable[[str], None]


def image_names(prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """The tag of each kind's image: `{prefix}{kind}:latest`."""
    return {kind: f"{prefix}{kind}:latest" for kind in KINDS}


IMAGE_NAMES = image_names()


class DockerUnavailableError(MutatorError):
    """No Docker engine answers (or the Docker SDK is missing): nothing can run in a container."""

    exit_code = 7


class ImageBuildError(MutatorError):
    """`docker build` failed; the message carries the step's last error line."""

    exit_code = 7


class ImageInfo(NamedTuple):
    """One kind's image; `size` (bytes) and `created` are None when it is not built."""

    kind: str
    tag: str
    size: int | None
    created: datetime | None


def ensure_docker(client: docker.DockerClient | None = None) -> docker.DockerClient:
    """A Docker client whose engine answered a ping, or DockerUnavailableError in one line."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        import docker
        import docker.errors
    except ImportError as error:
        raise DockerUnavailableError(
            f"the Docker SDK is not installed ({error}): pip install 'mutator[docker]'"
        ) from None
    try:
        client = client or docker.from_env(timeout=PING_TIMEOUT)
        client.ping()
    except Exception as error:  # noqa: BLE001 - the SDK raises requests', urllib3's and its own
        reason = _unreachable_reason(error)
        raise DockerUnavailableError(
            f"no Docker engine is reachable at {host} ({reason}): start one with "
            "`sudo systemctl start docker` or `sudo dockerd &`, or set DOCKER_HOST"
        ) from None
    return client


def build_image(
    kind: str,
    base_image: str | None = None,
    ca_cert: str | Path | None = None,
    index_url: str | None = None,
    progress: ProgressCallback | None = None,
    *,
    tag: str | None = None,
    client: docker.DockerClient | None = None,
) -> str:
    """Build `images/KIND/Dockerfile` as `tag` (default IMAGE_NAMES[kind]); return the image id.

    `base_image` replaces the Dockerfile's `python:3.11-slim` (e.g. the image that
    `images/make-base-image.sh` makes where no registry is reachable). `ca_cert` (default:
    $PIP_CERT, else pip's configured `cert`) and `index_url` (default: $PIP_INDEX_URL, else pip's
    configured `index-url`) let pip in the build reach the same index as pip here. Each line of
    the build's output goes to `progress`.
    """
    if kind not in KINDS:
        raise UsageError(f"unknown image kind {kind!r}: choose one of {', '.join(KINDS)}")
    tag = tag or IMAGE_NAMES[kind]
    ca_path = Path(ca_cert) if ca_cert is not None else default_ca_cert()
    if ca_path is not None and not ca_path.is_file():
        raise UsageError(f"CA certificate {ca_path} is not a readable file")
    index_url = index_url if index_url is not None else default_index_url()
    build_args = {name: os.environ[name] for name in PROXY_VARIABLES if os.environ.get(name)}
    if base_image:
        build_args["BASE_IMAGE"] = base_image
    if index_url:
        build_args["PIP_INDEX_URL"] = index_url
    client = ensure_docker(client)
    emit = progress or (lambda line: None)
    with tempfile.TemporaryDirectory(prefix="mutator-build-") as context:
        make_context(Path(context), ca_cert=ca_path)
        stream = client.api.build(
            path=context,
            dockerfile=f"images/{kind}/Dockerfile",
            tag=tag,
            buildargs=build_args,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        image_id = _follow_build(stream, emit)
    if image_id is None:  # old engines report the id only as "Successfully built <id>"
        image_id = client.images.get(tag).id
    return image_id


def list_images(
    client: docker.DockerClient | None = None, names: dict[str, str] | None = None
) -> list[ImageInfo]:
    """Every kind's image, built or not (size and created are None when it is missing)."""
    import docker.errors

    client = ensure_docker(client)
    infos = []
    for kind, tag in (names or IMAGE_NAMES).items():
        try:
            image = client.images.get(tag)
        except docker.errors.ImageNotFound:
            infos.append(ImageInfo(kind, tag, None, None))
            continue
        created = _parse_created(image.attrs.get("Created", ""))
        infos.append(ImageInfo(kind, tag, image.attrs.get("Size"), created))
    return infos


def make_context(target: Path, *, ca_cert: Path | None = None, root: Path | None = None) -> Path:
    """Copy what the Dockerfiles need into `target` (a build context); add the CA bundle if any."""
    root = root or IMAGES_DIR.parent
    ignore = shutil.ignore_patterns(*CONTEXT_IGNORED)
    target.mkdir(parents=True, exist_ok=True)
    for entry in CONTEXT_ENTRIES:
        source = root / entry
        if source.is_dir():
            shutil.copytree(source, target / entry, ignore=ignore, dirs_exist_ok=True)
        elif source.is_file():
            shutil.copy2(source, target / entry)
    (target / CA_IN_CONTEXT).parent.mkdir(parents=True, exist_ok=True)
    if ca_cert is not None:
        shutil.copyfile(ca_cert, target / CA_IN_CONTEXT)
    return target


def default_ca_cert() -> Path | None:
    """The CA bundle pip uses here: $PIP_CERT, else `cert` in pip's configuration."""
    value = os.environ.get("PIP_CERT") or _pip_config().get("cert")
    return Path(value) if value else None


def default_index_url() -> str | None:
    """pip's index here, when a container can reach it too (http or https, not a file: URL)."""
    value = os.environ.get("PIP_INDEX_URL") or _pip_config().get("index-url")
    return value if value and value.startswith(("http://", "https://")) else None


def _pip_config() -> dict[str, str]:
    """`pip config list` as {option: value}, the most specific scope last; {} if pip fails."""
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    values = {}
    for line in listed.splitlines():
        match = re.fullmatch(r"[^.]*\.([\w-]+)='(.*)'", line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def _follow_build(stream: Iterator[dict[str, Any]], emit: ProgressCallback) -> str | None:
    """Pass the build's lines on; the image id; ImageBuildError at the first error."""
    image_id = None
    last_error = None  # the step's own explanation, which Docker's message does not carry
    for chunk in stream:
        if "error" in chunk:
            detail = _one_line(chunk.get("errorDetail", {}).get("message") or chunk["error"])
            step = re.sub(r"^The command '/bin/sh -c (.{0,60}).*", r"\1...", detail)
            why = f"; last error: {last_error}" if last_error else ""
            raise ImageBuildError(f"docker build failed at: {step}{why}")
        if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        text = chunk.get("stream") or chunk.get("status")
        if text:
            for line in text.splitlines():
                if line.strip():
                    emit(line.rstrip())
                    if re.match(r"\s*(ERROR|error|E:|Error)\b", line):
                        last_error = _one_line(re.sub(r"\x1b\[[0-9;]*m", "", line))[:300]
    return image_id


def _parse_created(value: str) -> datetime | None:
    """Docker's RFC 3339 time (nanoseconds, Z) as an aware datetime."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", value)
    if not match:
        return None
    fraction = (match.group(2) or ".0")[:7]
    zone = match.group(3) or "Z"
    return datetime.fromisoformat(match.group(1) + fraction + ("+00:00" if zone == "Z" else zone))


def _unreachable_reason(error: Exception) -> str:
    """Why the engine did not answer, in a few words rather than the SDK's nested reprs."""
    text = _one_line(str(error))
    for clue, reason in (
        ("No such file", "no such socket"),
        ("Connection refused", "connection refused"),
        ("Permission denied", "permission denied: are you in the docker group?"),
        ("timed out", "timed out"),
    ):
        if clue in text:
            return reason
    text = text.removeprefix("Error while fetching server API version: ")
    return text[:120] or type(error).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())
