"""Packaging's value objects validate themselves and compare as NuGet and OCI do."""

from __future__ import annotations

import pytest

from services.packaging.domain import (
    FeedReference,
    ImageTag,
    PackageId,
    PackageVersion,
    RegistryReference,
    RepositoryName,
    VersionRange,
)
from shared_kernel.domain import InvalidValue

pytestmark = pytest.mark.unit


def test_a_package_id_follows_nuget_and_compares_case_insensitively() -> None:
    assert PackageId("Acme.Orders-Api_2").key == PackageId("acme.orders-api_2").key == "acme.orders-api_2"
    assert PackageId("A" * 100) == "A" * 100
    for bad in ("", ".Acme", "Acme..Orders", "Acme/Orders", "Acme Orders", "Acme.", "A" * 101):
        with pytest.raises(InvalidValue):
            PackageId(bad)


def test_a_package_version_key_ignores_case_and_build_metadata() -> None:
    assert PackageVersion("1.2.0-RC.1+sha.abc").key == PackageVersion("v1.2.0-rc.1").key == "1.2.0-rc.1"
    with pytest.raises(InvalidValue):
        PackageVersion("1.2")


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("1.0", "1.0"),
        ("[1.0]", "[1.0]"),
        ("[1.0, 2.0)", "[1.0,2.0)"),
        ("(,3.0]", "(,3.0]"),
        ("[1.0.0-beta.1,)", "[1.0.0-beta.1,)"),
        ("1.2.3.4", "1.2.3.4"),
    ],
)
def test_nuget_version_ranges(raw: str, stored: str) -> None:
    assert VersionRange(raw) == stored


@pytest.mark.parametrize("bad", ["[,]", "(,)", "[1.0", "1.0]", "[1.0;2.0]", "latest", "(1.0)"])
def test_a_version_range_that_bounds_nothing_or_is_not_a_range_is_refused(bad: str) -> None:
    with pytest.raises(InvalidValue):
        VersionRange(bad)


def test_a_feed_is_a_name_or_project_slash_name() -> None:
    assert FeedReference("Acme/Packages").key == "acme/packages"
    for bad in ("acme/packages/extra", "/packages", ".feed", "acme packages"):
        with pytest.raises(InvalidValue):
            FeedReference(bad)


def test_a_registry_is_a_host_with_an_optional_port() -> None:
    assert RegistryReference("MyAcr.AzureCR.io") == "myacr.azurecr.io"
    assert RegistryReference("localhost:5000") == "localhost:5000"
    for bad in ("localhost:0", "localhost:70000", "-acr.io", "acr..io", "acr.io/team", "https://acr.io"):
        with pytest.raises(InvalidValue):
            RegistryReference(bad)


def test_a_repository_name_is_an_oci_path() -> None:
    assert RepositoryName("team/orders-api") == "team/orders-api"
    assert RepositoryName("a__b/c.d/e--f") == "a__b/c.d/e--f"
    for bad in ("Team/orders", "team//orders", "team/_tags", "team/orders-", "/orders", "a___b"):
        with pytest.raises(InvalidValue):
            RepositoryName(bad)


def test_a_tag_follows_oci_and_a_version_becomes_one() -> None:
    assert ImageTag("1.2.0-rc.1") == "1.2.0-rc.1"
    assert ImageTag("_x") == "_x"
    assert ImageTag.for_version("v1.2.0+sha.abc") == "1.2.0_sha.abc"
    for bad in (".hidden", "-dash", "a" * 129, "a:b", "a/b"):
        with pytest.raises(InvalidValue):
            ImageTag(bad)
