"""The scan policy: blocked severities, fixable findings only by default, counts over every finding."""

from __future__ import annotations

import pytest

from services.packaging.domain import ScanPolicy, Severity, VulnerabilityFinding
from tests.unit.packaging.builders import finding

pytestmark = pytest.mark.unit

DEFAULT = ScanPolicy()
STRICT = ScanPolicy(only_with_fix_available=False)


@pytest.mark.parametrize(
    ("policy", "findings", "passed", "blocking"),
    [
        (DEFAULT, [], True, 0),
        (DEFAULT, [finding("CVE-1", "CRITICAL")], False, 1),
        (DEFAULT, [finding("CVE-1", "CRITICAL", fixed_version=None)], True, 0),
        (STRICT, [finding("CVE-1", "CRITICAL", fixed_version=None)], False, 1),
        (DEFAULT, [finding("CVE-1", "HIGH")], False, 1),
        (DEFAULT, [finding("CVE-1", "MEDIUM"), finding("CVE-2", "MEDIUM")], True, 0),
        (DEFAULT, [finding("CVE-1", "LOW"), finding("CVE-2", "UNKNOWN")], True, 0),
        (ScanPolicy(blocked_severities=frozenset()), [finding("CVE-1", "CRITICAL")], True, 0),
        (
            ScanPolicy(blocked_severities=frozenset({Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM})),
            [finding("CVE-1", "MEDIUM"), finding("CVE-2", "LOW")],
            False,
            1,
        ),
    ],
    ids=[
        "no-findings",
        "critical-with-fix",
        "critical-without-fix",
        "critical-without-fix-strict",
        "high-with-fix",
        "medium-only",
        "low-and-unknown",
        "nothing-blocked",
        "medium-blocked",
    ],
)
def test_the_verdict_follows_the_policy(
    policy: ScanPolicy, findings: list[VulnerabilityFinding], passed: bool, blocking: int
) -> None:
    verdict = policy.evaluate(findings)

    assert (verdict.passed, verdict.blocking_findings) == (passed, blocking)


def test_counts_cover_every_finding_by_severity() -> None:
    findings = [
        finding("CVE-1", "CRITICAL"),
        finding("CVE-2", "CRITICAL", fixed_version=None),
        finding("CVE-3", "HIGH"),
        finding("CVE-4", "MEDIUM"),
        finding("CVE-5", "UNKNOWN"),
    ]

    verdict = DEFAULT.evaluate(findings)

    assert verdict.severity_counts == {
        Severity.CRITICAL: 2,
        Severity.HIGH: 1,
        Severity.MEDIUM: 1,
        Severity.LOW: 0,
        Severity.UNKNOWN: 1,
    }
    assert verdict.blocking_findings == 2
    assert verdict.reasons == (
        "1 CRITICAL finding with a fix available (CVE-1)",
        "1 HIGH finding with a fix available (CVE-3)",
        "1 CRITICAL finding without a fix available, allowed by the policy (CVE-2)",
    )


def test_reasons_name_the_blocking_vulnerabilities_and_how_many_more() -> None:
    findings = [finding(f"CVE-2024-{n:04d}", "CRITICAL") for n in range(7, 0, -1)]

    verdict = DEFAULT.evaluate(findings)

    assert verdict.reasons == (
        "7 CRITICAL findings with a fix available "
        "(CVE-2024-0001, CVE-2024-0002, CVE-2024-0003, CVE-2024-0004, CVE-2024-0005 and 2 more)",
    )


def test_a_clean_pass_says_what_was_looked_for() -> None:
    assert DEFAULT.evaluate([finding("CVE-1", "LOW")]).reasons == (
        "no CRITICAL or HIGH finding with a fix available",
    )
    assert STRICT.evaluate([]).reasons == ("no CRITICAL or HIGH finding",)
    assert ScanPolicy(blocked_severities=frozenset()).evaluate([]).reasons == (
        "the policy blocks no severity",
    )


def test_trivy_writes_an_empty_fixed_version_when_there_is_no_fix() -> None:
    assert not finding("CVE-1", "HIGH", fixed_version="").has_fix
    assert not finding("CVE-1", "HIGH", fixed_version="  ").has_fix
    assert finding("CVE-1", "HIGH", fixed_version="1.1.1w").has_fix


def test_the_policy_goes_on_the_wire_most_severe_first() -> None:
    policy = ScanPolicy(blocked_severities=frozenset({Severity.LOW, Severity.CRITICAL, Severity.MEDIUM}))

    assert policy.wire() == {"blockedSeverities": ["CRITICAL", "MEDIUM", "LOW"], "onlyWithFixAvailable": True}
    assert ScanPolicy.model_validate(policy.wire()) == policy
