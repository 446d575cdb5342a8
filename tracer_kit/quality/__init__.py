"""Quality: does a source fit a blueprint, which rows are good, how good is the whole.

The stage, in the order it runs:

- :mod:`~tracer_kit.quality.matching` maps the source's columns onto the blueprint's fields
  (``column_map`` first, then unambiguous case/space/underscore-insensitive matches) and
  names each missing required field with "did you mean" suggestions.
- :mod:`~tracer_kit.quality.transforms` cleans a field's text before its checks (trim,
  lower case, defaults...) and pseudonymises personal fields after them.
- :mod:`~tracer_kit.quality.casting` types every value from text, flagging each present
  value that does not cast (decimal marks, thousands separators, date conventions).
- :mod:`~tracer_kit.quality.checks` is the registry of row and column checks: each gives
  per-row quarantine reasons, aggregates, issues and its score part.
- :mod:`~tracer_kit.quality.score` weighs the parts into the score and decides the gate.
- :mod:`~tracer_kit.quality.assess` runs all of it (:func:`assess`) and is the entry point
  from a file (:func:`validate`); the valid rows are finally checked against the
  blueprint's pandera schema, which must hold by construction.
"""

from tracer_kit.quality.assess import (
    assess,
    assess_ingested,
    check_compatible,
    check_schema,
    read_context,
    read_file,
    validate,
)
from tracer_kit.quality.casting import (
    MONTH_NAME_FORMATS,
    NULL_TOKENS,
    date_conventions,
    folded,
    plain_iso_columns,
)
from tracer_kit.quality.checks import CHECKS, Check, IssueContext, RowContext, register_check
from tracer_kit.quality.checks.categories import category_variant_issues
from tracer_kit.quality.checks.outliers import outlier_bounds
from tracer_kit.quality.checks.uniqueness import identifier_uniqueness
from tracer_kit.quality.matching import (
    fits_blueprint,
    match_columns,
    normalise_name,
    suggest_columns,
)
from tracer_kit.quality.names import Aggregates, Scratch
from tracer_kit.quality.result import QUARANTINE_SCHEMA, QualityResult, issues_frame
from tracer_kit.quality.score import SCORE_PARTS, SCORE_WEIGHTS, gate, quality_score, raise_for_gate
from tracer_kit.quality.transforms import TRANSFORMS, Transform, register_transform
from tracer_kit.types import ISSUE_COLUMNS, Issue, Severity

#: The severities, most severe first.
SEVERITIES = tuple(s.value for s in Severity)

__all__ = [
    "Aggregates",
    "CHECKS",
    "Check",
    "ISSUE_COLUMNS",
    "Issue",
    "IssueContext",
    "MONTH_NAME_FORMATS",
    "NULL_TOKENS",
    "QUARANTINE_SCHEMA",
    "QualityResult",
    "RowContext",
    "SCORE_PARTS",
    "SCORE_WEIGHTS",
    "SEVERITIES",
    "Scratch",
    "TRANSFORMS",
    "Transform",
    "assess",
    "assess_ingested",
    "category_variant_issues",
    "check_compatible",
    "check_schema",
    "date_conventions",
    "fits_blueprint",
    "folded",
    "gate",
    "identifier_uniqueness",
    "issues_frame",
    "match_columns",
    "normalise_name",
    "outlier_bounds",
    "plain_iso_columns",
    "quality_score",
    "raise_for_gate",
    "read_context",
    "read_file",
    "register_check",
    "register_transform",
    "suggest_columns",
    "validate",
]
