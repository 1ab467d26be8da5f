"""PackagePublication and BuildRecord: a package version comes from a successful build and never changes."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.pipelines import BuildCompleted
from services.packaging.domain import BuildArtifact, BuildRecord, ModuleType, PackagePublication
from services.packaging.domain.errors import (
    BuildAlreadyRecorded,
    BuildNotKnown,
    BuildNotSucceeded,
    ModuleTypeMismatch,
    PackageAlreadyPublished,
    PackageArtifactMissing,
    PackageIdMismatch,
    PackageVersionAlreadyPublished,
    PackageVersionMismatch,
    PublishedVersionImmutable,
    TargetFeedMalformed,
)
from shared_kernel.domain import DomainError, RuleViolation, StaleMessage
from tests.support.aggregates import refusal, validated
from tests.unit.packaging.builders import PACKAGE, at, build, content, publish, service_build

pytestmark = pytest.mark.unit


# Build record


def test_a_build_record_holds_what_build_completed_reported_and_records_no_event() -> None:
    completed = BuildCompleted.model_validate(
        {
            "buildResultId": "build-1",
            "pipelineRunId": "run-1",
            "pipelineId": "pipe-1",
            "tenantId": "tenant-1",
            "projectId": "project-1",
            "moduleId": "module-1",
            "moduleType": "library",
            "repositoryId": "repo-1",
            "commitSha": "1" * 40,
            "branch": "main",
            "status": "Succeeded",
            "version": "1.2.0",
            "targetFeed": "acme/packages",
            "artifacts": [PACKAGE.wire()],
            "testsPassed": 3,
            "testsFailed": 0,
            "coverage": 90,
            "logsUri": None,
            "completedAt": "2025-03-01T09:40:00Z",
            "someFutureField": "ignored",
        }
    )

    record = BuildRecord.from_build_completed(
        **completed.model_dump(include=set(FROM_BUILD_COMPLETED)),
        artifacts=[BuildArtifact.model_validate(artifact.wire()) for artifact in completed.artifacts],
        at=at(11),
        by="svc-packaging",
    )

    assert record == build()
    assert (record.build_version, record.module_type, record.artifacts) == (
        "1.2.0",
        ModuleType.LIBRARY,
        (PACKAGE,),
    )
    assert not record.has_pending_events


FROM_BUILD_COMPLETED = (
    "build_result_id",
    "pipeline_run_id",
    "tenant_id",
    "project_id",
    "module_id",
    "module_type",
    "repository_id",
    "commit_sha",
    "branch",
    "status",
    "version",
    "target_feed",
    "completed_at",
)


def test_a_build_is_required_known_and_recorded_once() -> None:
    record = build()

    assert BuildRecord.require(record, "build-1") is record
    with pytest.raises(BuildNotKnown) as unknown:
        BuildRecord.require(None, "build-9")
    assert (unknown.value.rule, isinstance(unknown.value, RuleViolation)) == ("BuildNotKnown", True)
    with pytest.raises(BuildNotKnown):
        BuildRecord.require(record, "build-9")  # a record of another build is no record of this one
    BuildRecord.ensure_not_recorded(None)
    with pytest.raises(BuildAlreadyRecorded) as again:
        BuildRecord.ensure_not_recorded(record)
    assert isinstance(again.value, StaleMessage)


@pytest.mark.parametrize("status", ["Failed", "Canceled"])
def test_only_a_succeeded_build_passes(status: str) -> None:
    record = build(status=status)

    refused = refusal(record, BuildNotSucceeded, record.ensure_succeeded)

    assert refused.rule == "BuildNotSucceeded"
    assert f"build-1 is {status}" in str(refused)


def test_package_artifacts_are_the_nupkgs_without_symbol_packages() -> None:
    symbols = BuildArtifact(
        name="out/Acme.Orders.1.2.0.symbols.nupkg", uri="blob://sha256/" + "1" * 64, sha256="1" * 64, size=1
    )
    snupkg = BuildArtifact(
        name="out/Acme.Orders.1.2.0.snupkg", uri="blob://sha256/" + "2" * 64, sha256="2" * 64, size=1
    )
    record = build(artifacts=[symbols, PACKAGE, snupkg])

    assert record.package_artifacts() == (PACKAGE,)
    assert record.package_artifact("acme.orders", "1.2.0") == PACKAGE
    refused = refusal(record, PackageArtifactMissing, lambda: record.package_artifact("Acme.Orders", "1.3.0"))
    assert "acme.orders.1.3.0.nupkg" in str(refused)


def test_the_target_feed_is_a_feed_for_a_library_and_registry_slash_repository_for_a_service() -> None:
    assert build().package_feed() == "acme/packages"
    assert service_build().image_destination() == ("acr.devops.local", "team/orders-api")

    for target in ("orders-api", "acr.devops.local/Team/Orders"):
        malformed = service_build(target_feed=target)
        refused = refusal(malformed, TargetFeedMalformed, malformed.image_destination)
        assert target in str(refused)
    bad_feed = build(target_feed="acme/packages/extra")
    refusal(bad_feed, TargetFeedMalformed, bad_feed.package_feed)


# Publication


def test_publish_records_package_published() -> None:
    publication = publish()

    [event] = validated(publication)
    assert event == {
        "type": "PackagePublished",
        "publicationId": "pub-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "buildResultId": "build-1",
        "moduleId": "module-1",
        "packageId": "Acme.Orders",
        "version": "1.2.0",
        "feed": "acme/packages",
        "status": "Published",
        "sha256": "c" * 64,
        "size": 2048,
        "dependencies": [
            {"id": "Acme.Core", "versionRange": "[1.0.0,2.0.0)"},
            {"id": "Newtonsoft.Json", "versionRange": None},
        ],
        "publishedAt": "2025-03-01T09:42:00Z",
        "publishedBy": "svc-packaging",
    }
    assert publication.key == ("acme.orders", "1.2.0", "acme/packages")


@pytest.mark.parametrize(
    ("overrides", "error", "named"),
    [
        ({"build": None}, BuildNotKnown, "build-1"),
        ({"build": build(build_result_id="build-2")}, BuildNotKnown, "build-1"),
        ({"build": build(status="Failed")}, BuildNotSucceeded, "Failed"),
        ({"build": service_build()}, ModuleTypeMismatch, "service"),
        ({"content": content(version="1.3.0")}, PackageVersionMismatch, "1.3.0"),
    ],
    ids=["unknown-build", "another-build", "failed-build", "service-build", "version-not-the-builds"],
)
def test_publish_refuses_a_package_that_is_not_a_successful_library_builds(
    overrides: dict[str, Any], error: type[RuleViolation], named: str
) -> None:
    with pytest.raises(error) as refused:
        publish(**overrides)

    assert refused.value.rule == error.__name__
    assert isinstance(refused.value, RuleViolation)
    assert named in str(refused.value)


def test_the_package_version_matches_the_build_as_nuget_compares_versions() -> None:
    publication = publish(build=build(version="1.2.0-RC.1+sha.abc"), content=content(version="1.2.0-rc.1"))

    assert publication.package_version == "1.2.0-rc.1"


def test_a_version_published_by_another_publication_is_refused() -> None:
    existing = publish()
    existing.pull_events()

    refused = refusal(
        existing,
        PackageVersionAlreadyPublished,
        lambda: publish(publication_id="pub-2", content=content(package_id="ACME.ORDERS"), existing=existing),
    )

    assert refused.rule == "PackageVersionAlreadyPublished"
    assert str(refused) == (
        "Acme.Orders 1.2.0 is already published to feed acme/packages by publication pub-1; "
        "a published version is never replaced"
    )


def test_the_same_publication_again_is_stale() -> None:
    existing = publish()

    stale = refusal(existing, PackageAlreadyPublished, lambda: publish(existing=existing))

    assert isinstance(stale, StaleMessage)
    assert stale.rule == "PackageAlreadyPublished"


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        ({"content": content(sha256="f" * 64)}, "content"),
        ({"content": content(size=1)}, "content"),
        ({"feed": "acme/other"}, "feed"),
    ],
)
def test_a_published_version_is_immutable(changed: dict[str, Any], named: str) -> None:
    existing = publish()

    refused = refusal(existing, PublishedVersionImmutable, lambda: publish(existing=existing, **changed))

    assert refused.rule == "PublishedVersionImmutable"
    assert str(refused).endswith(f"its {named} cannot change")


def test_republishing_other_content_is_refused_and_the_same_content_is_stale() -> None:
    publication = publish()

    refusal(
        publication,
        PublishedVersionImmutable,
        lambda: publication.republish(content(sha256="f" * 64), feed="acme/packages"),
    )
    refusal(
        publication, PackageAlreadyPublished, lambda: publication.republish(content(), feed="ACME/Packages")
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("sha256", "f" * 64), ("package_version", "1.2.1"), ("feed", "acme/other"), ("dependencies", ())],
)
def test_published_fields_cannot_be_assigned(field: str, value: object) -> None:
    publication = publish()

    refused = refusal(publication, PublishedVersionImmutable, lambda: setattr(publication, field, value))

    assert refused.rule == "PublishedVersionImmutable"


def test_the_package_file_must_be_the_requested_package() -> None:
    package = content()

    package.ensure_is("acme.ORDERS", "1.2.0+build.7")  # NuGet identity: case and metadata do not count
    errors: list[DomainError] = []
    for package_id, version, error in (
        ("Acme.Billing", "1.2.0", PackageIdMismatch),
        ("Acme.Orders", "1.2.1", PackageVersionMismatch),
    ):
        with pytest.raises(error) as refused:
            package.ensure_is(package_id, version)
        errors.append(refused.value)
    assert [error.rule for error in errors] == ["PackageIdMismatch", "PackageVersionMismatch"]
    assert str(errors[1]) == "package Acme.Orders is version 1.2.0; the request is version 1.2.1"


def test_a_loaded_publication_is_the_saved_one() -> None:
    publication = publish()
    publication.pull_events()

    assert PackagePublication.model_validate(publication.wire()) == publication
