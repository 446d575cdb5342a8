"""The check registry: every row and column check of the quality stage, one module each.

A check is a class with a ``name`` and any of these hooks (the defaults do nothing):

``field_reasons(field)``
    Per-row quarantine reasons for one field: expressions that are a reason string on a
    bad row and null elsewhere (``out_of_range``, ``missing_required``).
``prepare(rows)``
    Scratch columns the check needs on every row (named with :class:`Scratch`), computed
    once before the rows are written; the place for a pre-pass such as finding repeated
    identifiers.
``reasons(rows)``
    Per-row reasons over the prepared columns.
``aggregates(rows)``
    Named aggregate expressions over the checked rows; all checks' aggregates run as one
    streaming pass and each check gets back its own values.
``issues(found, ctx)``
    The :class:`Issue` rows (severity decided here) from those values; ``measure`` gives
    the score part the check stands for, when ``part`` is set.

:func:`register_check` adds a check; :data:`CHECKS` is the registry in order (the order
of quarantine reasons and of issues within a severity). Each check's expressions use only
columns, comparisons, ``when/then`` and plain aggregates, so they can be written for
another engine; engine-specific speed-ups (the out-of-core repeated-identifier search)
sit inside ``prepare``.
"""

from tracer_kit.quality.checks.base import (
    CHECKS,
    Aggregate,
    Check,
    Examples,
    IssueContext,
    RowContext,
    failures_of,
    reasons_of,
    register_check,
    run_checks,
)

__all__ = [
    "CHECKS",
    "Aggregate",
    "Check",
    "Examples",
    "IssueContext",
    "RowContext",
    "failures_of",
    "reasons_of",
    "register_check",
    "run_checks",
]

# The built-in checks register themselves on import; their order is fixed here (it is the
# order of quarantine reasons, field by field, and of issues within a severity).
from tracer_kit.quality.checks import (
    categories,
    completeness,
    dataset,
    ingest_rows,
    outliers,
    references,
    rules,
    uniqueness,
    validity,
)

CHECKS[:] = [
    ingest_rows.NoValidRows,
    ingest_rows.UnreadableRows,
    validity.Validity,
    completeness.Completeness,
    uniqueness.Uniqueness,
    rules.Rules,
    references.References,
    outliers.Outliers,
    categories.CategoryVariants,
    dataset.DatasetChecks,
]
