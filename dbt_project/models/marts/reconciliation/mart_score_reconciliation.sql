-- Our rules and our data against the portal's published figures: for every published sub-indicator,
-- the score our active rule version gives from the published numerator and denominator (tests our
-- rules), and the value our engine computed from our own dossier data for the same unit, period and
-- day (tests our data).
with published as (

    select
        *,
        {{ indicator_ratio('numerator', 'denominator') }} as ratio
    from {{ ref('stg_portal__evaluation_metrics') }}

),

rules as (

    {{ active_rules() }}

),

recomputed as (

    select
        published.load_id,
        published.evaluated_on,
        published.province_code,
        published.period_type,
        published.period_year,
        published.period_number,
        published.unit_code,
        published.indicator_group,
        published.indicator_code,
        published.numerator,
        published.denominator,
        published.published_ratio,
        published.published_score,
        {{ indicator_rate('published.ratio', 'rule') }} as rate_from_published_counts,
        {{ indicator_score('published.ratio', 'rule') }} as score_from_published_counts,
        -- Where the portal publishes a rate but no counts (the ONLINE group), our rule on that rate.
        case when published.numerator is null and published.published_ratio is not null
            then {{ indicator_score('published.published_ratio', 'rule') }} end as score_from_published_rate,
        rule.rule_version,
        -- Comparable: a rule exists, the portal published a score, and the counts behind it (or 0/0).
        rule.indicator_code is not null
            and published.published_score is not null
            and (published.numerator is not null or published.published_ratio is not null)
            as is_comparable
    from published
    left join rules as rule
        on rule.indicator_code = published.indicator_code
       and {{ rule_in_force('rule', 'published.evaluated_on') }}

),

ours as (

    -- Our value for the same unit (published under its portal code), period and as-of day.
    select units.portal_code, units.unit_code as our_unit_code, values.*
    from {{ ref('fct_indicator_values') }} as values
    inner join {{ ref('dim_units') }} as units using (unit_code)

)

select
    recomputed.*,
    ours.our_unit_code,
    ours.numerator                                                          as numerator_from_our_dossiers,
    ours.denominator                                                        as denominator_from_our_dossiers,
    ours.score                                                              as score_from_our_dossiers,
    -- Data matches: our counts give the published score (±0.01), or both are null.
    case when ours.our_unit_code is not null and recomputed.is_comparable then
        coalesce(abs(ours.score - recomputed.published_score) <= 0.01, false)
        or (ours.score is null and recomputed.published_score is null)
    end                                                                     as data_matches,
    -- Counts match: where the portal publishes counts, ours are the same.
    case when ours.our_unit_code is not null and recomputed.numerator is not null then
        ours.numerator = recomputed.numerator and ours.denominator = recomputed.denominator
    end                                                                     as counts_match,
    abs(coalesce(score_from_published_counts, score_from_published_rate) - published_score) as score_difference,
    coalesce(abs(coalesce(score_from_published_counts, score_from_published_rate) - published_score) <= 0.01, false)
        or (score_from_published_counts is null and published_score is null) as matches
from recomputed
left join ours
    on coalesce(ours.portal_code, ours.our_unit_code) = recomputed.unit_code
   and ours.business_date = recomputed.evaluated_on
   and ours.period_type = recomputed.period_type
   and ours.indicator_code = recomputed.indicator_code
