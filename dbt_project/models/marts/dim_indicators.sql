-- The sub-indicators of the 766 index as BI users see them: every rule version in the registry, with
-- the active one flagged (dbt var rule_version).
select
    registry.indicator_code,
    registry.indicator_group,
    registry.name_vi,
    registry.name_en,
    registry.numerator_definition,
    registry.denominator_definition,
    registry.max_points,
    registry.rule,
    registry.cap_threshold,
    registry.zero_denominator_rate,
    registry.zero_denominator_score,
    registry.is_scored,
    registry.rule_version,
    registry.rule_version = '{{ var("rule_version", "portal-2026") }}' as is_active_version,
    registry.valid_from,
    registry.valid_to,
    registry.source
from {{ ref('rule_registry') }} as registry
