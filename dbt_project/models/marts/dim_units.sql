-- One row per unit: its latest version. Versioned history over time comes with the 766 engine (#5).
select distinct on (unit_code)
    unit_code,
    unit_name,
    unit_kind,
    -- Units the 766 index scores directly; provinces are scored on their aggregated population.
    unit_kind in ('AGENCY', 'DISTRICT', 'COMMUNE') as is_evaluated,
    parent_unit_code,
    portal_code,
    statistical_code,
    valid_from,
    valid_to
from {{ ref('stg_portal__units') }}
order by unit_code, valid_from desc
