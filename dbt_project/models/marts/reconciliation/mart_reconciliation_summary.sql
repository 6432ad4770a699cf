-- Per capture and kind of comparison (rule, data, publication): how many were compared, matched and
-- differed, how many the capture's form does not publish, and the first differences. What
-- `python -m chiso.transform.reconcile` prints.
with captures as (

    select * from {{ ref('stg_portal__evaluation_captures') }}

),

kinds as (

    select * from (values (1, 'rule'), (2, 'data'), (3, 'publication')) as kinds (kind_order, kind)

),

checks as (

    select
        *,
        row_number() over (partition by load_id, kind, outcome
                           order by unit_code, check_name, item nulls first) as nth_of_outcome
    from {{ ref('mart_reconciliation_checks') }}

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
    k.kind_order,
    k.kind,
    count(checks.outcome) filter (where checks.outcome in ('match', 'differ')) as compared,
    count(checks.outcome) filter (where checks.outcome = 'match') as matched,
    count(checks.outcome) filter (where checks.outcome = 'differ') as differed,
    count(checks.outcome) filter (where checks.outcome = 'not published') as not_published,
    count(checks.outcome) filter (where checks.outcome = 'not compared') as not_compared,
    string_agg(
        checks.unit_code || ' ' || checks.check_name || coalesce(' ' || checks.item, '') || ': published '
            || coalesce(checks.published_value::text, '—') || ', expected ' || coalesce(checks.expected_value::text, '—'),
        '; ' order by checks.unit_code, checks.check_name, checks.item
    ) filter (where checks.outcome = 'differ' and checks.nth_of_outcome <= 3) as first_differences
from captures as c
cross join kinds as k
left join checks on checks.load_id = c.load_id and checks.kind = k.kind
group by c.load_id, c.evaluated_on, c.province_code, c.period_type, c.period_year, c.period_number, c.form,
         c.source_file, k.kind_order, k.kind
