-- Every version of every unit (valid_from/valid_to): names, kinds, parents and the three code schemes
-- as they were, for history-correct reports; dim_units is the one-row-per-unit view of the latest.
select
    versions.unit_code,
    versions.valid_from,
    versions.valid_to,
    versions.unit_name,
    versions.unit_kind,
    versions.parent_unit_code,
    parents.unit_kind                                          as parent_unit_kind,
    versions.portal_code,
    versions.statistical_code,
    versions.valid_to is null                                  as is_current
from {{ ref('stg_portal__units') }} as versions
-- The parent's kind as its latest version states it (one pass over the catalogue, then a hash join).
left join (
    select distinct on (unit_code) unit_code, unit_kind
    from {{ ref('stg_portal__units') }}
    order by unit_code, valid_from desc
) as parents on parents.unit_code = versions.parent_unit_code
