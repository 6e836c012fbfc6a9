"""The training images: built from images/, non-root, train a mounted script at once, no CA inside.

The docker-marked tests need an engine (CI's images/setup-docker.sh starts one and builds the
images); without one they skip and say why. A missing image is built here once, on
$MUTATOR_BASE_IMAGE (default: mutator-base:bookworm-py311 when it exists, for machines that cannot
pull python:3.11-slim).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import tarfile
import uuid
from pathlib import Path

import pytest

from mutator.containers import images
from mutator.containers.images import DockerUnavailableError, ImageInfo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LOCAL_BASE_IMAGE = "mutator-base:bookworm-py311"
TRAIN_SCRIPT = {"sklearn": "sklearn_digits.py", "keras": "cnn_digits.py"}
HARNESS_OPTIONS = {"sklearn": ["--metric-regex", r"test accuracy: ([0-9.]+)"], "keras": []}


@pytest.fixture(scope="session")
def client():
    try:
        return images.ensure_docker()
    except DockerUnavailableError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def base_image(client):
    import docker.errors

    if os.environ.get("MUTATOR_BASE_IMAGE"):
        return os.environ["MUTATOR_BASE_IMAGE"]
    try:
        client.images.get(LOCAL_BASE_IMAGE)
        return LOCAL_BASE_IMAGE
    except docker.errors.ImageNotFound:
        return None  # the Dockerfiles' python:3.11-slim, from a registry


@pytest.fixture(scope="session")
def image(client, base_image):
    """The tag of a kind's image, built first if it is missing (once per session)."""
    import docker.errors

    def get(kind: str) -> str:
        tag = images.IMAGE_NAMES[kind]
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            images.build_image(kind, base_image=base_image, client=client)
        return tag

    return get


def run(client, tag: str, command=None, **options) -> tuple[int, str]:
    """Run a container to its end: exit code and output."""
    container = client.containers.run(tag, command, detach=True, **options)
    try:
        code = container.wait(timeout=600)["StatusCode"]
        return code, container.logs().decode("utf-8", errors="replace")
    finally:
        container.remove(force=True)


def trial_dir(tmp_path: Path, kind: str) -> Path:
    """A trial dir as the runner prepares it: the script as train.py, writable by the image."""
    trial = tmp_path / "trial"
    trial.mkdir()
    shutil.copy(FIXTURES / TRAIN_SCRIPT[kind], trial / "train.py")
    trial.chmod(0o777)  # the image's uid 1000 must write here; the runner chowns instead
    return trial


def mount(trial: Path) -> dict:
    return {str(trial): {"bind": "/trial", "mode": "rw"}}


# --- no engine needed ---------------------------------------------------------------------------


def test_ensure_docker_is_one_line_when_no_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(DockerUnavailableError) as caught:
        images.ensure_docker()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("no Docker engine is reachable at unix://")
    assert "dockerd" in message and "systemctl start docker" in message
    assert caught.value.exit_code == 7


def test_context_holds_the_project_and_only_the_ca_given(tmp_path):
    root = tmp_path / "repo"
    for name in (
        "pyproject.toml",
        "README.md",
        "mutator/training/harness.py",
        "rules/__init__.py",
        "images/keras/Dockerfile",
        "images/build-ca/stray.crt",
        "mutator/training/__pycache__/harness.cpython-311.pyc",
        "fixtures/cnn.py",
        ".venv/x",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    cert = tmp_path / "proxy.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    context = images.make_context(tmp_path / "context", ca_cert=cert, root=root)
    files = sorted(str(path.relative_to(context)) for path in context.rglob("*") if path.is_file())
    assert files == [
        "README.md",
        "images/build-ca/ca.crt",
        "images/keras/Dockerfile",
        "mutator/training/harness.py",
        "pyproject.toml",
        "rules/__init__.py",
    ]
    assert (context / images.CA_IN_CONTEXT).read_text() == cert.read_text()


def test_context_of_this_repo_has_what_the_dockerfiles_copy(tmp_path):
    context = images.make_context(tmp_path / "context")
    for name in (
        "pyproject.toml",
        "README.md",
        "mutator/training/harness.py",
        "rules/__init__.py",
        "images/entrypoint.sh",
        "images/keras/Dockerfile",
        "images/sklearn/Dockerfile",
    ):
        assert (context / name).is_file(), name


def test_context_without_a_ca_has_an_empty_ca_folder(tmp_path):
    context = images.make_context(tmp_path / "context")
    assert (context / images.CA_IN_CONTEXT).parent.is_dir()
    assert not (context / images.CA_IN_CONTEXT).exists()


def test_unknown_kind_is_a_usage_error():
    with pytest.raises(images.UsageError, match="unknown image kind 'torch'"):
        images.build_image("torch")


def test_default_ca_cert_follows_pip_cert(monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_CERT", str(tmp_path / "bundle.pem"))
    assert images.default_ca_cert() == tmp_path / "bundle.pem"


def test_a_file_index_is_not_passed_to_a_container(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "file:///opt/pypi/simple")
    assert images.default_index_url() is None
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.example/simple")
    assert images.default_index_url() == "https://pypi.example/simple"


# --- with an engine -----------------------------------------------------------------------------


@pytest.mark.docker
def test_list_images_names_every_kind(client, image):
    image("sklearn")
    listed = {info.kind: info for info in images.list_images(client)}
    assert set(listed) == set(images.KINDS)
    sklearn = listed["sklearn"]
    assert isinstance(sklearn, ImageInfo) and sklearn.tag == images.IMAGE_NAMES["sklearn"]
    assert sklearn.size > 10_000_000 and sklearn.created is not None


@pytest.mark.docker
@pytest.mark.parametrize(
    "kind, imports",
    [
        ("sklearn", "mutator.training.harness, sklearn"),
        pytest.param("keras", "mutator.training.harness, keras", marks=pytest.mark.slow),
    ],
)
def test_image_imports_the_harness_as_uid_1000(client, image, kind, imports):
    code, output = run(
        client, image(kind), ["python", "-c", f"import os, {imports}; print('uid', os.getuid())"]
    )
    assert code == 0, output
    assert output.strip().splitlines()[-1] == "uid 1000"


@pytest.mark.docker
@pytest.mark.parametrize("kind", ["sklearn", pytest.param("keras", marks=pytest.mark.slow)])
def test_mounted_script_trains_at_once(client, image, tmp_path, kind):
    trial = trial_dir(tmp_path, kind)
    code, output = run(client, image(kind), HARNESS_OPTIONS[kind], volumes=mount(trial))
    assert code == 0, output
    metrics = json.loads((trial / "metrics.json").read_text())  # readable on the host
    assert metrics["status"] == "ok", metrics
    assert 0 < metrics["value"] <= 1
    assert metrics["script"] == "/trial/train.py"
    if kind == "keras":
        assert metrics["keras"] and len(metrics["history"][0]["epochs"]["val_accuracy"]) == 2


@pytest.mark.docker
def test_any_uid_can_train(client, image, tmp_path):
    """`--user $(id -u):$(id -g)` (files owned by the host user) works too: HOME falls back."""
    trial = trial_dir(tmp_path, "sklearn")
    code, output = run(
        client,
        image("sklearn"),
        HARNESS_OPTIONS["sklearn"],
        volumes=mount(trial),
        user="12345:12345",
    )
    assert code == 0, output
    assert (trial / "metrics.json").stat().st_uid == 12345


@pytest.mark.docker
def test_runner_command_runs_as_given(client, image, tmp_path):
    """A command that is not harness options runs as is: how the Docker runner starts trials."""
    trial = trial_dir(tmp_path, "sklearn")
    command = [
        "python",
        "-m",
        "mutator.training.harness",
        "/trial/train.py",
        "--trial-dir",
        "/trial/out",
        "--metric-regex",
        r"test accuracy: ([0-9.]+)",
        "--",
    ]
    code, output = run(client, image("sklearn"), command, volumes=mount(trial))
    assert code == 0, output
    assert json.loads((trial / "out" / "metrics.json").read_text())["status"] == "ok"


@pytest.mark.docker
def test_no_script_is_one_clear_line(client, image, tmp_path):
    trial = tmp_path / "empty"
    trial.mkdir(mode=0o777)
    trial.chmod(0o777)
    code, output = run(client, image("sklearn"), volumes=mount(trial))
    assert code == 2
    assert output.strip() == (
        "mutator: no training script at /trial/train.py: mount a trial dir holding train.py on"
        ' /trial (-v "$PWD/trial:/trial") or set MUTATOR_SCRIPT'
    )


@pytest.mark.docker
def test_history_does_not_show_the_build_ca(client, image):
    history = client.api.history(image("sklearn"))
    steps = " ".join(layer.get("CreatedBy", "") for layer in history)
    assert "build-ca" not in steps and "PIP_CERT" not in steps
    assert "COPY --from" in steps or "copy" in steps.lower()


@pytest.mark.docker
@pytest.mark.slow
def test_ca_cert_given_to_the_build_is_not_in_the_image(client, base_image, tmp_path):
    """Build with a bundle carrying a unique marker; no file of the final image holds it."""
    import docker.errors

    marker = f"mutator-test-ca-{uuid.uuid4().hex}"
    source = images.default_ca_cert() or Path(ssl.get_default_verify_paths().cafile or "")
    if not source.is_file():
        pytest.skip("no CA bundle on this machine to extend with a marker")
    cert = tmp_path / "bundle.pem"
    cert.write_text(source.read_text() + f"\n# {marker}\n")
    tag = f"mutator-sklearn:ca-test-{uuid.uuid4().hex[:8]}"
    dangling_before = {found.id for found in client.images.list(filters={"dangling": True})}
    images.build_image("sklearn", base_image=base_image, ca_cert=cert, tag=tag, client=client)
    container = client.containers.create(tag, ["true"])
    try:
        exported = tmp_path / "fs.tar"
        with exported.open("wb") as handle:
            for chunk in container.export():
                handle.write(chunk)
        found = []
        with tarfile.open(exported) as tar:
            for member in tar:
                if "build-ca" in member.name:
                    found.append(member.name)
                elif member.isfile() and member.size:
                    data = tar.extractfile(member).read()
                    if marker.encode() in data:
                        found.append(member.name)
        assert found == []
    finally:
        container.remove(force=True)
        client.images.remove(tag)
        # The build stage that saw the marked bundle: one-off cache nobody will reuse.
        for found in client.images.list(filters={"dangling": True}):
            if found.id not in dangling_before:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(found.id)
