{#- The procedure-based sub-indicators ("procedures with at least one dossier that…"), defined once.

    A procedure counts for a reporting unit and period from the first day in the period on which one of
    the unit's dossiers (its members' for a parent or successor, int_unit_lineage) showed a feature. These
    are distinct counts, so they cannot be summed from members like dossier counts; the engine keeps, per
    (reporting unit, period, procedure), the first day of each feature (int_procedure_first_days) and
    maintains it from the night's changed dossiers alone (docs/engine-incremental.md). -#}


{#- The features of a (unit, reception day, procedure): name → SQL over fct_dossiers' columns, true when
    any of that day's dossiers of the procedure has it. -#}
{% macro procedure_features() -%}
    {{ return({
        'paid_online': "is_paid_online",
        'has_fee': "has_fee",
        'connected_to_citizen_data': "uses_population_data and serves_individuals",
        'serves_individuals': "serves_individuals",
        'offered_online': "coalesce(online_level in ('TOAN_TRINH', 'MOT_PHAN'), false)",
        'online_dossier_of_online_service': "is_online and coalesce(online_level <> 'KHONG', true)",
        'online_service': "coalesce(online_level <> 'KHONG', true)",
    }) }}
{%- endmacro %}


{#- Which feature's first day puts a procedure into which side of which sub-indicator ('received': the
    procedure had any received dossier):
      TTTT ONLINE_FORMALITY_PAYMENT: procedures with a dossier paid online / procedures with fee-bearing dossiers;
      TTTT FEE_FORMALITY_INTEGRATED: procedures whose dossiers carry fee data / procedures with a fee (provisional);
      MDSH CITIZEN_DATA_CONNECTED_FORMALITY: procedures with a dossier using population data / procedures
        serving individuals;
      ONLINE, tech-note split: PROCEDURES_ONLINE, procedures offered online / procedures;
        ONLINE_SERVICES_WITH_DOSSIER, online services with an online dossier / online services. -#}
{% macro procedure_indicator_sides() -%}
    {{ return([
        ('ONLINE_FORMALITY_PAYMENT', 'numerator', 'paid_online'),
        ('ONLINE_FORMALITY_PAYMENT', 'denominator', 'has_fee'),
        ('FEE_FORMALITY_INTEGRATED', 'numerator', 'has_fee'),
        ('FEE_FORMALITY_INTEGRATED', 'denominator', 'has_fee'),
        ('CITIZEN_DATA_CONNECTED_FORMALITY', 'numerator', 'connected_to_citizen_data'),
        ('CITIZEN_DATA_CONNECTED_FORMALITY', 'denominator', 'serves_individuals'),
        ('PROCEDURES_ONLINE', 'numerator', 'offered_online'),
        ('PROCEDURES_ONLINE', 'denominator', 'received'),
        ('ONLINE_SERVICES_WITH_DOSSIER', 'numerator', 'online_dossier_of_online_service'),
        ('ONLINE_SERVICES_WITH_DOSSIER', 'denominator', 'online_service'),
    ]) }}
{%- endmacro %}


{#- Every feature whose first day is kept: 'received' and procedure_features(). -#}
{% macro procedure_first_day_features() -%}
    {{ return(['received'] + (procedure_features().keys() | list)) }}
{%- endmacro %}


{#- The sub-indicator events of first days: one row per (unit, period, indicator, day) with the
    procedures entering the numerator and the denominator that day, times `sign`, from `relation`'s
    columns <prefix><feature> (first days; null when the procedure never had the feature in the period). -#}
{% macro procedure_first_day_events(relation, prefix, sign=1) -%}
    select
        firsts.reporting_unit_code,
        firsts.period_type,
        firsts.period_start,
        side.indicator_code,
        side.first_date                                                            as event_date,
        ({{ sign }} * count(*) filter (where side.side = 'numerator'))::bigint    as numerator_delta,
        ({{ sign }} * count(*) filter (where side.side = 'denominator'))::bigint  as denominator_delta
    from {{ relation }} as firsts
    cross join lateral (values
        {%- for indicator_code, side, feature in procedure_indicator_sides() %}
        ('{{ indicator_code }}', '{{ side }}', firsts.{{ prefix }}{{ feature }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as side (indicator_code, side, first_date)
    where side.first_date is not null
    group by 1, 2, 3, 4, 5
{%- endmacro %}
