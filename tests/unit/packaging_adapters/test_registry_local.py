"""The local OCI registry stores real manifests and blobs by digest and never moves a tag.

Images are real OCI image manifests over real layer bytes; digests are
computed here with hashlib, not through the adapter.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from services.packaging.adapters.registry_local import LocalContainerRegistry
from services.packaging.ports import (
    OCI_MANIFEST,
    BlobCorrupted,
    BlobNotFound,
    Descriptor,
    InvalidManifest,
    InvalidReference,
    LayerDigestMismatch,
    ManifestNotFound,
    MissingLayer,
    PushedImage,
    TagConflict,
)

pytestmark = pytest.mark.unit

REGISTRY = "acr.devops.local"
REPOSITORY = "team/orders-api"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def _inodes(root: Path) -> dict[Path, int]:
    """Every file under ``root`` with its inode: a rewritten file gets a new one."""
    return {path: path.stat().st_ino for path in root.rglob("*") if path.is_file()}


def _entries(directory: Path) -> list[Path]:
    return list(directory.iterdir())


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class Image:
    """An OCI image: a config, gzip layers and the manifest that names them."""

    def __init__(self, label: str = "v1", layers: int = 2) -> None:
        self.config = json.dumps(
            {"architecture": "amd64", "os": "linux", "config": {"Labels": {"build": label}}}
        ).encode()
        self.layers = [gzip.compress(f"layer {n} of {label}".encode() * 50, mtime=0) for n in range(layers)]
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": self.descriptor(self.config, CONFIG_TYPE),
                "layers": [self.descriptor(layer, LAYER_TYPE) for layer in self.layers],
            },
            indent=2,
        ).encode()

    @staticmethod
    def descriptor(data: bytes, media_type: str) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        return {digest_of(data): data for data in (self.config, *self.layers)}


async def test_push_stores_the_manifest_under_its_digest_and_binds_the_tag(tmp_path: Path) -> None:
    registry = LocalContainerRegistry(tmp_path)
    image = Image()

    pushed = await registry.push(REGISTRY, REPOSITORY, "1.2.0", image.manifest, image.blobs)

    assert pushed == PushedImage(
        digest=image.digest,
        media_type=OCI_MANIFEST,
        config=Descriptor(media_type=CONFIG_TYPE, digest=digest_of(image.config), size=len(image.config)),
        layers=tuple(
            Descriptor(media_type=LAYER_TYPE, digest=digest_of(layer), size=len(layer))
            for layer in image.layers
        ),
    )
    assert await registry.resolve(REGISTRY, REPOSITORY, "1.2.0") == image.digest
    assert await registry.resolve(REGISTRY, REPOSITORY, "latest") is None
    assert await registry.manifest(REGISTRY, REPOSITORY, image.digest) == image.manifest
    for digest, data in image.blobs.items():
        assert await registry.blob(REGISTRY, digest) == data
        assert (
            tmp_path / REGISTRY / "blobs" / "sha256" / digest.removeprefix("sha256:")
        ).read_bytes() == data
    tag_file = tmp_path / REGISTRY / "repositories" / REPOSITORY / "_tags" / "1.2.0"
    assert tag_file.read_text() == image.digest
    assert list((tmp_path / REGISTRY / "_uploads").iterdir()) == []


async def test_the_same_push_again_is_a_no_op(tmp_path: Path) -> None:
    registry = LocalContainerRegistry(tmp_path)
    image = Image()
    first = await registry.push(REGISTRY, REPOSITORY, "1.2.0", image.manifest, image.blobs)
    files = _inodes(tmp_path)

    again = await registry.push(REGISTRY, REPOSITORY, "1.2.0", image.manifest, image.blobs)

    assert again == first
    assert _inodes(tmp_path) == files


async def test_a_push_never_moves_a_tag(tmp_path: Path) -> None:
    registry = LocalContainerRegistry(tmp_path)
    old, new = Image("v1"), Image("v2")
    await registry.push(REGISTRY, REPOSITORY, "1.2.0", old.manifest, old.blobs)

    with pytest.raises(TagConflict, match=old.digest):
        await registry.push(REGISTRY, REPOSITORY, "1.2.0", new.manifest, new.blobs)

    assert await registry.resolve(REGISTRY, REPOSITORY, "1.2.0") == old.digest
    with pytest.raises(ManifestNotFound):
        await registry.manifest(REGISTRY, REPOSITORY, new.digest)
    await registry.push(REGISTRY, REPOSITORY, "1.2.1", new.manifest, new.blobs)  # another tag is free
    assert await registry.resolve(REGISTRY, REPOSITORY, "1.2.1") == new.digest


async def test_concurrent_pushes_of_one_tag_to_different_digests_have_exactly_one_winner(
    tmp_path: Path,
) -> None:
    registry = LocalContainerRegistry(tmp_path)
    images = [Image(f"build-{n}") for n in range(8)]

    outcomes = await asyncio.gather(
        *(registry.push(REGISTRY, REPOSITORY, "1.2.0", image.manifest, image.blobs) for image in images),
        return_exceptions=True,
    )

    won = [outcome for outcome in outcomes if isinstance(outcome, PushedImage)]
    lost = [outcome for outcome in outcomes if isinstance(outcome, TagConflict)]
    assert (len(won), len(lost)) == (1, 7)
    assert await registry.resolve(REGISTRY, REPOSITORY, "1.2.0") == won[0].digest


def test_threads_released_together_onto_one_tag_have_exactly_one_winner(tmp_path: Path) -> None:
    registry = LocalContainerRegistry(tmp_path)
    images = [Image(f"build-{n}", layers=1) for n in range(6)]
    start = threading.Barrier(len(images))

    def push(image: Image) -> str:
        start.wait()
        try:
            return asyncio.run(
                registry.push(REGISTRY, REPOSITORY, "race", image.manifest, image.blobs)
            ).digest
        except TagConflict:
            return "conflict"

    for _ in range(5):
        for path in (tmp_path / REGISTRY / "repositories").rglob("race"):
            path.unlink()
        with ThreadPoolExecutor(len(images)) as pool:
            results = list(pool.map(push, images))
        winners = [result for result in results if result != "conflict"]
        assert len(winners) == 1
        assert asyncio.run(registry.resolve(REGISTRY, REPOSITORY, "race")) == winners[0]


async def test_every_blob_must_match_its_digest_and_size(tmp_path: Path) -> None:
    registry = LocalContainerRegistry(tmp_path)
    image = Image()
    layer = digest_of(image.layers[0])

    with pytest.raises(LayerDigestMismatch, match=layer):
        await registry.push(
            REGISTRY, REPOSITORY, "1.2.0", image.manifest, {**image.blobs, layer: b"tampered"}
        )
    wrong_size = json.loads(image.manifest)
    wrong_size["layers"][0]["size"] += 1
    with pytest.raises(LayerDigestMismatch, match="the manifest says"):
        await registry.push(REGISTRY, REPOSITORY, "1.2.0", json.dumps(wrong_size).encode(), image.blobs)

    assert not (tmp_path / REGISTRY / "blobs").exists()
    assert await registry.resolve(REGISTRY, REPOSITORY, "1.2.0") is None


async def test_every_blob_must_be_given_or_already_stored(tmp_path: Path) -> None:
    registry = LocalContainerRegistry(tmp_path)
    base = Image("base", layers=1)
    config = digest_of(base.config)

    with pytest.raises(MissingLayer, match=config):
        await registry.push(REGISTRY, REPOSITORY, "base", base.manifest, {})
    await registry.push(REGISTRY, REPOSITORY, "base", base.manifest, base.blobs)

    # The registry holds the blobs now: another repository's manifest naming them needs no upload,
    # while another registry holds none of them.
    await registry.push(REGISTRY, "team/other", "1.0.0", base.manifest, {})
    assert await registry.resolve(REGISTRY, "team/other", "1.0.0") == base.digest
    with pytest.raises(MissingLayer):
        await registry.push("other.registry.io", REPOSITORY, "1.0.0", base.manifest, {})


def _manifest(**changes: Any) -> bytes:
    document = json.loads(Image().manifest)
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b"\xff not json", "JSON"),
        (b"[]", "JSON object"),
        (_manifest(schemaVersion=1), "schemaVersion"),
        (_manifest(schemaVersion=True), "schemaVersion"),
        (_manifest(mediaType="application/vnd.oci.image.index.v1+json"), "mediaType"),
        (_manifest(layers={}), "layers"),
        (_manifest(config=None), "config must be a descriptor"),
        (_manifest(layers=[{"mediaType": LAYER_TYPE, "digest": "sha512:" + "a" * 128, "size": 1}]), "sha256"),
        (_manifest(layers=[{"mediaType": LAYER_TYPE, "digest": "sha256:" + "a" * 64, "size": -1}]), "size"),
        (_manifest(layers=[{"digest": "sha256:" + "a" * 64, "size": 1}]), "mediaType"),
    ],
    ids=[
        "not-json",
        "not-object",
        "schema-1",
        "schema-bool",
        "index",
        "layers-not-list",
        "no-config",
        "sha512",
        "negative-size",
        "no-media-type",
    ],
)
async def test_a_push_refuses_what_is_not_an_image_manifest(
    tmp_path: Path, manifest: bytes, message: str
) -> None:
    with pytest.raises(InvalidManifest, match=message):
        await LocalContainerRegistry(tmp_path).push(REGISTRY, REPOSITORY, "1.2.0", manifest, Image().blobs)
    assert not tmp_path.joinpath(REGISTRY).exists()


@pytest.mark.parametrize(
    ("registry", "repository", "tag"),
    [("ACR..io", REPOSITORY, "1"), (REGISTRY, "../escape", "1"), (REGISTRY, REPOSITORY, "../../x")],
)
async def test_names_are_checked_before_they_become_paths(
    tmp_path: Path, registry: str, repository: str, tag: str
) -> None:
    image = Image()
    with pytest.raises(InvalidReference):
        await LocalContainerRegistry(tmp_path).push(registry, repository, tag, image.manifest, image.blobs)
    assert _entries(tmp_path) == []


async def test_damaged_content_is_refused_on_read_and_repaired_by_a_push(tmp_path: Path) -> None:
    registry = LocalContainerRegistry(tmp_path)
    image = Image()
    await registry.push(REGISTRY, REPOSITORY, "1.2.0", image.manifest, image.blobs)
    layer = digest_of(image.layers[1])
    stored = tmp_path / REGISTRY / "blobs" / "sha256" / layer.removeprefix("sha256:")
    stored.chmod(0o644)
    stored.write_bytes(b"bit rot")

    with pytest.raises(BlobCorrupted):
        await registry.blob(REGISTRY, layer)
    with pytest.raises(MissingLayer):  # a damaged blob does not count as stored
        await registry.push(REGISTRY, "team/copy", "1.2.0", image.manifest, {})
    await registry.push(REGISTRY, REPOSITORY, "1.2.0", image.manifest, image.blobs)

    assert await registry.blob(REGISTRY, layer) == image.layers[1]
    with pytest.raises(BlobNotFound):
        await registry.blob(REGISTRY, digest_of(b"never pushed"))
    with pytest.raises(InvalidReference):
        await registry.blob(REGISTRY, "md5:abc")
