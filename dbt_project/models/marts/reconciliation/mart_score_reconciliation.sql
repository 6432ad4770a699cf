-- Our rules against the portal's published figures: for every published sub-indicator, the score our
-- active rule version gives from the published numerator and denominator (tests our rules). The
-- score from our own dossier data (tests our data) joins here when the 766 engine computes it (#5).
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

)

select
    *,
    cast(null as numeric) as score_from_our_dossiers,
    abs(coalesce(score_from_published_counts, score_from_published_rate) - published_score) as score_difference,
    coalesce(abs(coalesce(score_from_published_counts, score_from_published_rate) - published_score) <= 0.01, false)
        or (score_from_published_counts is null and published_score is null) as matches
from recomputed
