"""Branch policy: what a branch requires of the pull requests that target it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from shared_kernel.domain import DomainModel
from shared_kernel.domain.value_objects import Identifier, Identity


class PolicyType(StrEnum):
    MINIMUM_REVIEWERS = "MinimumReviewers"
    BUILD_VALIDATION = "BuildValidation"
    REQUIRED_CHECK = "RequiredCheck"


# The settings each policy type needs; any other setting must stay unset.
_SETTINGS_OF = {
    PolicyType.MINIMUM_REVIEWERS: {"minimum_reviewers"},
    PolicyType.BUILD_VALIDATION: {"pipeline_id", "check_name"},
    PolicyType.REQUIRED_CHECK: {"check_name"},
}


class PolicySettings(DomainModel):
    model_config = DomainModel.model_config | {"frozen": True}

    minimum_reviewers: int | None = Field(default=None, ge=0)
    check_name: Identifier | None = None
    pipeline_id: Identifier | None = None


class BranchPolicyBinding(DomainModel):
    """One policy bound to a branch; its bypass identities may push past it."""

    model_config = DomainModel.model_config | {"frozen": True}

    binding_id: Identifier
    policy_type: PolicyType
    settings: PolicySettings
    bypass_identities: tuple[Identity, ...] = ()

    @model_validator(mode="after")
    def _settings_fit_policy_type(self) -> Self:
        given = {name for name, value in self.settings if value is not None}
        needed = _SETTINGS_OF[self.policy_type]
        if given != needed:
            raise ValueError(
                f"a {self.policy_type} binding takes settings {sorted(needed)}, got {sorted(given)}"
            )
        return self


class BranchPolicy(DomainModel):
    """The policy a repository's default branch is provisioned with."""

    model_config = DomainModel.model_config | {"frozen": True}

    minimum_reviewers: int = Field(default=1, ge=0)
    required_checks: tuple[Identifier, ...] = ()
    bypass_identities: tuple[Identity, ...] = ()

    def bindings(self, branch_id: str) -> list[BranchPolicyBinding]:
        """The bindings of this policy on a branch, with ids derived from it.

        The reviewer binding is always present, even for zero reviewers, so the
        bypass identities always have a binding to ride on.
        """
        reviewers = BranchPolicyBinding(
            binding_id=f"{branch_id}:minimum-reviewers",
            policy_type=PolicyType.MINIMUM_REVIEWERS,
            settings=PolicySettings(minimum_reviewers=self.minimum_reviewers),
            bypass_identities=self.bypass_identities,
        )
        checks = [
            BranchPolicyBinding(
                binding_id=f"{branch_id}:check:{name}",
                policy_type=PolicyType.REQUIRED_CHECK,
                settings=PolicySettings(check_name=name),
                bypass_identities=self.bypass_identities,
            )
            for name in self.required_checks
        ]
        return [reviewers, *checks]


class MergePolicy(DomainModel):
    """What a pull request must satisfy, copied from its target branch at open time."""

    model_config = DomainModel.model_config | {"frozen": True}

    minimum_reviewers: int = Field(default=0, ge=0)
    required_checks: tuple[Identifier, ...] = ()


class PolicyEvaluation(DomainModel):
    """Where a pull request stands against its merge policy, with reasons if it fails."""

    model_config = DomainModel.model_config | {"frozen": True}

    minimum_reviewers: int
    approvals: tuple[Identity, ...]
    rejections: tuple[Identity, ...]
    required_checks: tuple[Identifier, ...]
    passed_checks: tuple[Identifier, ...]
    pending_checks: tuple[Identifier, ...]
    failed_checks: tuple[Identifier, ...]
    passed: bool
    reasons: tuple[str, ...]

    @classmethod
    def of(
        cls,
        policy: MergePolicy,
        *,
        approvals: Iterable[str],
        rejections: Iterable[str],
        succeeded_checks: Iterable[str],
        failed_checks: Iterable[str],
        stale_checks: Mapping[str, str] | None = None,
        source_head: str | None = None,
    ) -> PolicyEvaluation:
        """Where the votes and check reports leave a pull request against ``policy``.

        ``stale_checks`` maps a check to the sha its latest report is for when that
        is not ``source_head``: whatever it reported, it is pending on the head.
        """
        stale = dict(stale_checks or {})
        approved, rejected = sorted(approvals), sorted(rejections)
        succeeded = set(succeeded_checks) - stale.keys()
        failed_names = set(failed_checks) - stale.keys()
        required = policy.required_checks
        passed = [name for name in required if name in succeeded]
        failed = [name for name in required if name in failed_names]
        pending = [name for name in required if name not in succeeded and name not in failed_names]
        reasons = [
            f"required check {name!r} is pending: its latest report is for {stale[name]}, "
            f"not the source head {source_head}"
            if name in stale
            else f"required check {name!r} is pending"
            for name in pending
        ]
        reasons += [f"required check {name!r} failed" for name in failed]
        if len(approved) < policy.minimum_reviewers:
            reasons.append(
                f"{policy.minimum_reviewers} approving reviewer(s) other than the author "
                f"required, {len(approved)} given"
            )
        reasons += [f"rejected by {reviewer}" for reviewer in rejected]
        return cls(
            minimum_reviewers=policy.minimum_reviewers,
            approvals=tuple(approved),
            rejections=tuple(rejected),
            required_checks=required,
            passed_checks=tuple(passed),
            pending_checks=tuple(pending),
            failed_checks=tuple(failed),
            passed=not reasons,
            reasons=tuple(reasons),
        )

    @property
    def checks_passed(self) -> bool:
        return not self.pending_checks and not self.failed_checks
