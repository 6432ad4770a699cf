-- The published evaluation, one row per capture, unit and (sub-)indicator, in the registry's codes.
-- TDGQ publishes its counts as totals (on time / received); ONLINE only a group ratio; TTTT group
-- totals for two of its three sub-indicators and no sub-scores.
-- Every capture loaded (one per province, period, unit scope and extraction day): each is reconciled on
-- its own (mart_reconciliation_checks).
with units as (

    select e.*
    from {{ source('portal', 'portal__evaluations') }} as e

),

listed_metrics as (

    select u.load_id, u.business_date, u.province_code, u.period_type, u.period_year, u.period_number,
           u.record ->> 'departmentCode' as unit_code, block.key as block_name,
           metric ->> 'code' as indicator_code,
           (metric ->> 'numerator')::integer as numerator, (metric ->> 'denominator')::integer as denominator,
           (metric ->> 'ratio')::numeric as ratio, (metric ->> 'score')::numeric as score,
           (metric ->> 'maxScore')::numeric as max_score
    from units as u
    cross join lateral jsonb_each(u.record -> 'componentIndicators') as block
    cross join lateral jsonb_array_elements(block.value -> 'metrics') as metric
    where jsonb_typeof(block.value -> 'metrics') = 'array'

),

group_totals as (

    select u.load_id, u.business_date, u.province_code, u.period_type, u.period_year, u.period_number,
           u.record ->> 'departmentCode' as unit_code, totals.block_name, totals.indicator_code,
           totals.numerator, totals.denominator, totals.ratio, totals.score, totals.max_score
    from units as u
    cross join lateral (
        select 'TDGQ_TienDoGiaiQuyet', 'ON_TIME',
               (u.record #>> '{componentIndicators,TDGQ_TienDoGiaiQuyet,totalOnTime}')::integer,
               (u.record #>> '{componentIndicators,TDGQ_TienDoGiaiQuyet,totalReceived}')::integer,
               (u.record #>> '{componentIndicators,TDGQ_TienDoGiaiQuyet,ratio}')::numeric,
               (u.record #>> '{componentIndicators,TDGQ_TienDoGiaiQuyet,score}')::numeric,
               (u.record #>> '{componentIndicators,TDGQ_TienDoGiaiQuyet,maxScore}')::numeric
        union all
        select 'ONLINE_DichVuTrucTuyen', 'ONLINE', null, null,
               (u.record #>> '{componentIndicators,ONLINE_DichVuTrucTuyen,ratio}')::numeric,
               (u.record #>> '{componentIndicators,ONLINE_DichVuTrucTuyen,score}')::numeric,
               (u.record #>> '{componentIndicators,ONLINE_DichVuTrucTuyen,maxScore}')::numeric
        union all
        select 'TTTT_ThanhToanTrucTuyen', 'DOSSIER_ONLINE_PAYMENT',
               (u.record #>> '{componentIndicators,TTTT_ThanhToanTrucTuyen,totalDossierOnlinePaymentSuccess}')::integer,
               (u.record #>> '{componentIndicators,TTTT_ThanhToanTrucTuyen,totalDossierFinancialObligation}')::integer,
               null, null, null
        union all
        select 'TTTT_ThanhToanTrucTuyen', 'ONLINE_FORMALITY_PAYMENT',
               (u.record #>> '{componentIndicators,TTTT_ThanhToanTrucTuyen,totalDossierOnlineFormalityPaymentSuccess}')::integer,
               (u.record #>> '{componentIndicators,TTTT_ThanhToanTrucTuyen,totalFeeFormality}')::integer,
               null, null, null
    ) as totals (block_name, indicator_code, numerator, denominator, ratio, score, max_score)
    -- Only blocks the capture publishes (summary captures have none).
    where coalesce(u.record -> 'componentIndicators' ? totals.block_name, false)

)

select
    load_id,
    business_date as evaluated_on,
    province_code,
    period_type,
    period_year,
    period_number,
    unit_code,
    split_part(block_name, '_', 1) as indicator_group,
    indicator_code,
    numerator,
    denominator,
    ratio as published_ratio,
    score as published_score,
    max_score as published_max_score
from listed_metrics
union all
select
    load_id, business_date, province_code, period_type, period_year, period_number, unit_code,
    split_part(block_name, '_', 1), indicator_code, numerator, denominator, ratio, score, max_score
from group_totals
