"""The scan policy: which vulnerability findings block an image from promotion.

A project's policy names the severities that block and whether only findings
with a fix available count (the default: a CRITICAL or HIGH finding blocks
only when upgrading would remove it, since a finding nobody can fix would
otherwise block every release of an image). Evaluating the scanner's
findings gives a verdict with counts and reasons a person can act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import Field, field_serializer, field_validator

from services.packaging.domain.values import Severity
from shared_kernel.domain import DomainModel
from shared_kernel.domain.value_objects import Identifier

# Reasons list this many vulnerability ids per group, then say how many more there are.
LISTED_IDS = 5


class VulnerabilityFinding(DomainModel):
    """One finding of a scanner, in Trivy's shape: a vulnerability in an installed package."""

    model_config = DomainModel.model_config | {"frozen": True}

    vulnerability_id: Identifier
    package_name: str = Field(min_length=1, max_length=255)
    installed_version: str = Field(min_length=1, max_length=255)
    fixed_version: str | None = Field(default=None, max_length=255)
    severity: Severity

    @field_validator("fixed_version")
    @classmethod
    def _blank_means_no_fix(cls, value: str | None) -> str | None:
        # Trivy writes an empty FixedVersion when no fixed release exists.
        if value is None or not value.strip():
            return None
        return value.strip()

    @property
    def has_fix(self) -> bool:
        return self.fixed_version is not None


class ScanVerdict(DomainModel):
    """What a policy concluded about one scan's findings."""

    model_config = DomainModel.model_config | {"frozen": True}

    passed: bool
    severity_counts: dict[Severity, int]
    blocking_findings: int = Field(ge=0)
    reasons: tuple[str, ...]


class ScanPolicy(DomainModel):
    """Which findings block: their severity is blocked, and (optionally) a fix is available."""

    model_config = DomainModel.model_config | {"frozen": True}

    blocked_severities: frozenset[Severity] = frozenset({Severity.CRITICAL, Severity.HIGH})
    only_with_fix_available: bool = True

    @field_serializer("blocked_severities")
    def _most_severe_first(self, severities: frozenset[Severity]) -> list[str]:
        return [str(severity) for severity in _ordered(severities)]

    def blocks(self, finding: VulnerabilityFinding) -> bool:
        if finding.severity not in self.blocked_severities:
            return False
        return finding.has_fix or not self.only_with_fix_available

    def evaluate(self, findings: Iterable[VulnerabilityFinding]) -> ScanVerdict:
        """The verdict on ``findings``: it passes when none blocks; counts cover every finding."""
        findings = tuple(findings)
        counts = dict.fromkeys(Severity, 0)
        for finding in findings:
            counts[finding.severity] += 1
        blocking = [finding for finding in findings if self.blocks(finding)]
        reasons = [
            *self._blocking_reasons(blocking),
            *self._allowed_reasons(findings),
        ]
        if not blocking:
            reasons.insert(0, self._clean_reason())
        return ScanVerdict(
            passed=not blocking,
            severity_counts=counts,
            blocking_findings=len(blocking),
            reasons=tuple(reasons),
        )

    def _blocking_reasons(self, blocking: Sequence[VulnerabilityFinding]) -> list[str]:
        qualifier = " with a fix available" if self.only_with_fix_available else ""
        return [
            f"{_count(group, severity)}{qualifier} ({_ids(group)})"
            for severity, group in _by_severity(blocking)
        ]

    def _allowed_reasons(self, findings: Sequence[VulnerabilityFinding]) -> list[str]:
        """Blocked severities let through only because no fix exists: worth saying, not blocking."""
        allowed = [
            finding
            for finding in findings
            if finding.severity in self.blocked_severities and not self.blocks(finding)
        ]
        return [
            f"{_count(group, severity)} without a fix available, allowed by the policy ({_ids(group)})"
            for severity, group in _by_severity(allowed)
        ]

    def _clean_reason(self) -> str:
        if not self.blocked_severities:
            return "the policy blocks no severity"
        severities = " or ".join(str(severity) for severity in _ordered(self.blocked_severities))
        qualifier = " with a fix available" if self.only_with_fix_available else ""
        return f"no {severities} finding{qualifier}"


def _ordered(severities: Iterable[Severity]) -> list[Severity]:
    return sorted(severities, key=lambda severity: severity.rank)


def _by_severity(
    findings: Sequence[VulnerabilityFinding],
) -> list[tuple[Severity, list[VulnerabilityFinding]]]:
    present = _ordered({finding.severity for finding in findings})
    return [(severity, [f for f in findings if f.severity is severity]) for severity in present]


def _count(findings: Sequence[VulnerabilityFinding], severity: Severity) -> str:
    return f"{len(findings)} {severity} finding{'' if len(findings) == 1 else 's'}"


def _ids(findings: Sequence[VulnerabilityFinding]) -> str:
    ids = sorted({finding.vulnerability_id for finding in findings})
    listed = ", ".join(ids[:LISTED_IDS])
    more = len(ids) - LISTED_IDS
    return f"{listed} and {more} more" if more > 0 else listed
