"""The local NuGet feed reads real .nupkg files, keeps each version's bytes forever, and checks them on read.

Packages are built here with zipfile, as ``dotnet pack`` lays them out;
hashes are checked with hashlib directly, not through the adapter.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from services.packaging.adapters.feed_local import LocalPackageFeed, normalise_version
from services.packaging.ports import (
    InvalidPackage,
    InvalidReference,
    ManifestDependency,
    PackageCorrupted,
    PackageManifest,
    PackageNotFound,
    PackageVersionExists,
    PublishedPackage,
)

pytestmark = pytest.mark.unit

NUSPEC_2013 = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"
NUSPEC_2010 = "http://schemas.microsoft.com/packaging/2010/07/nuspec.xsd"
GROUPED = """
    <dependencies>
      <group targetFramework="net8.0">
        <dependency id="Acme.Core" version="[1.0.0, 2.0.0)" exclude="Build,Analyzers" />
        <dependency id="Newtonsoft.Json" version="13.0.3" />
      </group>
      <group targetFramework="netstandard2.0">
        <dependency id="Acme.Core" version="[1.0.0, 2.0.0)" />
        <dependency id="System.Text.Json" />
      </group>
    </dependencies>"""


def nuspec(package_id: str, version: str, dependencies: str = GROUPED, namespace: str = NUSPEC_2013) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="{namespace}">
  <metadata>
    <id>{package_id}</id>
    <version>{version}</version>
    <authors>Acme</authors>
    <description>Orders domain library</description>{dependencies}
  </metadata>
</package>"""


def nupkg(
    package_id: str = "Acme.Orders",
    version: str = "1.2.0",
    *,
    spec: str | None = None,
    payload: bytes = b"MZ\x90\x00 assembly bytes",
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{package_id}.nuspec", spec if spec is not None else nuspec(package_id, version))
        archive.writestr(f"lib/net8.0/{package_id}.dll", payload)
        archive.writestr("[Content_Types].xml", "<Types/>")
    return buffer.getvalue()


def _text(path: Path) -> str:
    return path.read_text()


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


DEPENDENCIES = (
    ManifestDependency(id="Acme.Core", version_range="[1.0.0,2.0.0)"),
    ManifestDependency(id="Newtonsoft.Json", version_range="13.0.3"),
    ManifestDependency(id="System.Text.Json", version_range=None),
)


async def test_inspect_reads_the_nuspec_of_any_schema_version(tmp_path: Path) -> None:
    feed = LocalPackageFeed(tmp_path)

    for namespace in (NUSPEC_2013, NUSPEC_2010, ""):
        spec = nuspec("Acme.Orders", "1.2.0", namespace=namespace).replace(' xmlns=""', "")
        manifest = await feed.inspect(nupkg(spec=spec))
        assert manifest == PackageManifest(id="Acme.Orders", version="1.2.0", dependencies=DEPENDENCIES)


async def test_inspect_reads_ungrouped_dependencies_and_normalises_the_version(tmp_path: Path) -> None:
    flat = '\n    <dependencies><dependency id="Acme.Core" version="1.0" /></dependencies>'
    spec = nuspec("Acme.Orders", "01.2.0.0", dependencies=flat)

    manifest = await LocalPackageFeed(tmp_path).inspect(nupkg(spec=spec))

    assert manifest == PackageManifest(
        id="Acme.Orders",
        version="1.2.0",
        dependencies=(ManifestDependency(id="Acme.Core", version_range="1.0"),),
    )


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("1.2", "1.2.0"), ("1.2.3.0", "1.2.3"), ("1.2.3.4", "1.2.3.4"), ("1.02.3-RC.1+abc", "1.2.3-RC.1+abc")],
)
def test_versions_are_normalised_as_nuget_does(raw: str, normalised: str) -> None:
    assert normalise_version(raw) == normalised


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a zip at all", "zip archive"),
        (_zip({"lib/net8.0/a.dll": "x"}), "exactly one .nuspec"),
        (_zip({"a.nuspec": nuspec("A", "1.0.0"), "b.nuspec": nuspec("B", "1.0.0")}), "exactly one .nuspec"),
        (_zip({"sub/a.nuspec": nuspec("A", "1.0.0")}), "exactly one .nuspec"),
        (_zip({"a.nuspec": "<package><metadata>"}), "well-formed"),
        (_zip({"a.nuspec": "<package><other/></package>"}), "<package><metadata>"),
        (_zip({"a.nuspec": nuspec("A", "1.0.0").replace("<id>A</id>", "")}), "no id"),
        (_zip({"a.nuspec": nuspec("A B", "1.0.0")}), "malformed"),
        (_zip({"a.nuspec": nuspec("A", "one")}), "malformed"),
        (
            _zip(
                {
                    "a.nuspec": nuspec(
                        "A",
                        "1.0.0",
                        dependencies='<dependencies><dependency id="B" version="[,]"/></dependencies>',
                    )
                }
            ),
            "dependency",
        ),
        (
            _zip({"a.nuspec": '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY e "x">]><package/>'}),
            "document type",
        ),
    ],
    ids=[
        "not-zip",
        "no-nuspec",
        "two-nuspecs",
        "nuspec-not-at-root",
        "not-xml",
        "no-metadata",
        "no-id",
        "bad-id",
        "bad-version",
        "bad-range",
        "doctype",
    ],
)
async def test_inspect_refuses_what_is_not_a_package(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(InvalidPackage, match=message):
        await LocalPackageFeed(tmp_path).inspect(content)


async def test_publish_stores_the_package_where_nuget_would(tmp_path: Path) -> None:
    feed = LocalPackageFeed(tmp_path)
    content = nupkg()

    published = await feed.publish("Acme/Packages", "Acme.Orders", "1.2.0", content)

    path = tmp_path / "acme%2Fpackages" / "acme.orders" / "1.2.0" / "acme.orders.1.2.0.nupkg"
    digest = hashlib.sha256(content).hexdigest()
    assert published == PublishedPackage(
        sha256=digest, size=len(content), dependencies=DEPENDENCIES, location=path.as_uri()
    )
    assert feed.path_of("acme/packages", "ACME.ORDERS", "1.2.0+build.1") == path
    assert path.read_bytes() == content
    assert _text(Path(f"{path}.sha256")) == digest
    assert await feed.download("acme/packages", "acme.orders", "1.2.0") == content
    assert list((tmp_path / ".staging").iterdir()) == []


async def test_the_same_package_again_is_a_no_op_and_other_bytes_are_refused(tmp_path: Path) -> None:
    feed = LocalPackageFeed(tmp_path)
    content = nupkg()
    first = await feed.publish("packages", "Acme.Orders", "1.2.0", content)
    stored = feed.path_of("packages", "Acme.Orders", "1.2.0")
    inode = stored.stat().st_ino

    assert await feed.publish("packages", "acme.orders", "1.2.0", content) == first
    with pytest.raises(PackageVersionExists, match=first.sha256):
        await feed.publish("packages", "Acme.Orders", "1.2.0", nupkg(payload=b"rebuilt"))

    assert (stored.stat().st_ino, stored.read_bytes()) == (inode, content)


async def test_publish_refuses_a_package_whose_nuspec_says_otherwise(tmp_path: Path) -> None:
    feed = LocalPackageFeed(tmp_path)

    with pytest.raises(InvalidPackage, match=r"Acme\.Orders 1\.2\.0, not Acme\.Billing 1\.2\.0"):
        await feed.publish("packages", "Acme.Billing", "1.2.0", nupkg())
    with pytest.raises(InvalidPackage, match=r"not Acme\.Orders 1\.3\.0"):
        await feed.publish("packages", "Acme.Orders", "1.3.0", nupkg())
    with pytest.raises(InvalidReference):
        await feed.publish("../escape", "Acme.Orders", "1.2.0", nupkg())
    assert _files(tmp_path) == []


async def test_concurrent_publishers_of_one_version_leave_exactly_one_content(tmp_path: Path) -> None:
    feed = LocalPackageFeed(tmp_path)
    contents = [nupkg(payload=f"build {n}".encode()) for n in range(8)]

    outcomes = await asyncio.gather(
        *(feed.publish("packages", "Acme.Orders", "1.2.0", content) for content in contents),
        return_exceptions=True,
    )

    won = [outcome for outcome in outcomes if isinstance(outcome, PublishedPackage)]
    lost = [outcome for outcome in outcomes if isinstance(outcome, PackageVersionExists)]
    assert (len(won), len(lost)) == (1, 7)
    stored = await feed.download("packages", "Acme.Orders", "1.2.0")
    assert hashlib.sha256(stored).hexdigest() == won[0].sha256


async def test_a_damaged_package_is_refused_on_read_and_repaired_by_its_own_bytes(tmp_path: Path) -> None:
    feed = LocalPackageFeed(tmp_path)
    content = nupkg()
    await feed.publish("packages", "Acme.Orders", "1.2.0", content)
    stored = feed.path_of("packages", "Acme.Orders", "1.2.0")
    stored.write_bytes(content[:-10])

    with pytest.raises(PackageCorrupted):
        await feed.download("packages", "Acme.Orders", "1.2.0")
    with pytest.raises(PackageVersionExists):
        await feed.publish("packages", "Acme.Orders", "1.2.0", nupkg(payload=b"other"))
    await feed.publish("packages", "Acme.Orders", "1.2.0", content)

    assert await feed.download("packages", "Acme.Orders", "1.2.0") == content


async def test_download_of_a_version_the_feed_does_not_hold(tmp_path: Path) -> None:
    with pytest.raises(PackageNotFound):
        await LocalPackageFeed(tmp_path).download("packages", "Acme.Orders", "9.9.9")
