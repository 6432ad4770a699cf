-- Every comparison reconciliation makes on each loaded capture of the published evaluation, one row
-- each, classified by kind (docs/engine.md, "Reconciliation"):
--   rule        our rule, fed the published counts (or rate, or totals), against the published score or rank;
--   data        the counts and scores from our own dossiers against the published ones;
--   publication the publication against itself: a total against the sum of its groups, a group score
--               against its block and the block against its sub-scores, a rate against numerator ÷
--               denominator, ranks against totals.
-- outcome: match / differ (the two counted as compared); 'not published' where the capture's form does
-- not carry what the comparison needs (score-only blocks, summary-only, agency-only ranks); 'not compared'
-- where there is nothing to judge by (no dossiers of ours, a tie, or a rule comparison whose published
-- inputs disagree with themselves, which the publication kind counts instead).
-- Two published figures agree when they differ by at most 0.01, the precision the portal publishes at.
{% set tolerance = 0.01 %}
with captures as (

    select * from {{ ref('stg_portal__evaluation_captures') }}

),

scores as (

    select * from {{ ref('mart_score_reconciliation') }}

),

groups as (

    select * from {{ ref('stg_portal__evaluation_groups') }}

),

ranks as (

    select * from {{ ref('mart_rank_reconciliation') }}

),

units as (

    select * from {{ ref('stg_portal__evaluation_units') }}

),

rates as (

    select
        load_id,
        unit_code,
        indicator_code,
        published_ratio,
        round(100.0 * numerator / denominator, 2) as ratio_from_counts,
        abs(published_ratio - round(100.0 * numerator / denominator, 2)) <= {{ tolerance }} as agrees
    from scores
    where numerator is not null and denominator > 0 and published_ratio is not null

),

-- What a capture's form leaves out, per unit and group: sub-indicators (and their counts) not listed.
unlisted as (

    select load_id, unit_code, indicator_group
    from groups
    where (lists_sub_indicators and not sub_indicators_published)
       or (indicator_group in ('TDGQ', 'ONLINE') and not block_published)

),

rule_checks as (

    select
        s.load_id, s.unit_code, 'rule' as kind, 'sub-score from published counts' as check_name,
        s.indicator_code as item, s.published_score as published_value,
        coalesce(s.score_from_published_counts, s.score_from_published_rate) as expected_value,
        case when s.matches then 'match' when not r.agrees then 'not compared' else 'differ' end as outcome,
        case when not s.matches and not r.agrees then 'the published rate disagrees with its own counts' end as note
    from scores as s
    left join rates as r using (load_id, unit_code, indicator_code)
    where s.is_comparable

    union all

    select load_id, unit_code, 'rule', 'sub-score from published counts', indicator_group || ' sub-indicators',
           null, null, 'not published', 'the capture publishes no ' || indicator_group || ' sub-indicators'
    from unlisted

    union all

    select
        load_id, unit_code, 'rule', 'rank among all units', null, published_rank, rank,
        case when not rank_population_in_capture then 'not published'
             when is_tied or not rank_follows_totals then 'not compared'
             when rank_matches then 'match' else 'differ' end,
        case when not rank_population_in_capture then 'the capture does not hold the units this rank was published among'
             when is_tied then 'tied total: the portal''s order of ties is unexplained'
             when not rank_follows_totals then 'the published ranks do not follow the published totals' end
    from ranks

    union all

    select
        load_id, unit_code, 'rule', 'rank within its group', unit_group, published_group_rank, group_rank,
        case when not group_rank_population_in_capture then 'not published'
             when is_tied_in_group or not group_rank_follows_totals then 'not compared'
             when group_rank_matches then 'match' else 'differ' end,
        case when not group_rank_population_in_capture then 'the capture does not hold the units this rank was published among'
             when is_tied_in_group then 'tied total: the portal''s order of ties is unexplained'
             when not group_rank_follows_totals then 'the published ranks do not follow the published totals' end
    from ranks

),

data_checks as (

    select
        load_id, unit_code, 'data' as kind, 'counts from our dossiers' as check_name, indicator_code as item,
        denominator as published_value, denominator_from_our_dossiers as expected_value,
        case when our_unit_code is null then 'not compared' when counts_match then 'match' else 'differ' end as outcome,
        case when our_unit_code is null then 'no dossiers of ours for this unit and day'
             when not counts_match then numerator || '/' || denominator || ' published, '
                 || numerator_from_our_dossiers || '/' || denominator_from_our_dossiers || ' ours' end as note
    from scores
    where is_comparable and numerator is not null

    union all

    select
        load_id, unit_code, 'data', 'score from our dossiers', indicator_code, published_score, score_from_our_dossiers,
        case when our_unit_code is null then 'not compared' when data_matches then 'match' else 'differ' end,
        case when our_unit_code is null then 'no dossiers of ours for this unit and day' end
    from scores
    where is_comparable

    union all

    select load_id, unit_code, 'data', 'counts from our dossiers', indicator_group || ' sub-indicators',
           null, null, 'not published', 'the capture publishes no ' || indicator_group || ' counts'
    from unlisted
    where indicator_group <> 'ONLINE'

),

totals as (

    select load_id, unit_code, published_total,
           sum(published_group_score) filter (where group_score_published) as sum_of_groups,
           count(*) filter (where group_score_published) as groups_published
    from groups
    inner join units using (load_id, unit_code)
    group by load_id, unit_code, published_total

    union all

    -- The capture's overview (the province, or the nation) where it publishes its group scores.
    select load_id, coalesce(overview ->> 'departmentCode', province_code),
           (overview ->> 'totalScore')::numeric,
           (select sum(value::numeric) from jsonb_each_text(overview -> 'groupScores')),
           (select count(*) from jsonb_each_text(overview -> 'groupScores'))
    from captures
    where overview is not null

),

publication_checks as (

    select
        load_id, unit_code, 'publication' as kind, 'total against the sum of its groups' as check_name,
        null as item, published_total as published_value, sum_of_groups as expected_value,
        case when groups_published = 0 or published_total is null then 'not published'
             when abs(published_total - sum_of_groups) <= {{ tolerance }} then 'match' else 'differ' end as outcome,
        null as note
    from totals

    union all

    select
        load_id, unit_code, 'publication', 'group score against its block', indicator_group,
        published_group_score, block_score,
        case when not (group_score_published and block_published) then 'not published'
             when published_group_score is null and block_score is null then 'match'
             when abs(published_group_score - block_score) <= {{ tolerance }} then 'match' else 'differ' end,
        null
    from groups

    union all

    select
        load_id, unit_code, 'publication', 'block against the sum of its sub-scores', indicator_group,
        block_score, sum_of_sub_scores,
        case when not sub_indicators_published then 'not published'
             when abs(coalesce(block_score, 0) - coalesce(sum_of_sub_scores, 0)) <= {{ tolerance }} then 'match'
             else 'differ' end,
        null
    from groups
    where lists_sub_indicators

    union all

    select
        load_id, unit_code, 'publication', 'rate against numerator ÷ denominator', indicator_code,
        published_ratio, ratio_from_counts, case when agrees then 'match' else 'differ' end, null
    from rates

    union all

    select load_id, unit_code, 'publication', 'rate against numerator ÷ denominator', indicator_group || ' sub-indicators',
           null, null, 'not published', 'the capture publishes no ' || indicator_group || ' counts'
    from unlisted
    where indicator_group <> 'ONLINE'

    union all

    select
        load_id, unit_code, 'publication', 'rank follows the totals', null, published_rank, null,
        case when rank_follows_totals is null then 'not published' when rank_follows_totals then 'match' else 'differ' end,
        case when rank_follows_totals is null then 'the capture does not hold the units this rank was published among' end
    from ranks

    union all

    select
        load_id, unit_code, 'publication', 'group rank follows the totals', unit_group, published_group_rank, null,
        case when group_rank_follows_totals is null then 'not published'
             when group_rank_follows_totals then 'match' else 'differ' end,
        case when group_rank_follows_totals is null then 'the capture does not hold the units this rank was published among' end
    from ranks

),

checks as (

    select * from rule_checks
    union all
    select * from data_checks
    union all
    select * from publication_checks

)

select
    c.load_id,
    c.evaluated_on,
    c.province_code,
    c.period_type,
    c.period_year,
    c.period_number,
    c.form,
    c.source_file,
    checks.unit_code,
    checks.kind,
    checks.check_name,
    checks.item,
    checks.published_value,
    checks.expected_value,
    checks.outcome,
    checks.note
from checks
inner join captures as c using (load_id)
