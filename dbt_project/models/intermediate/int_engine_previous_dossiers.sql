-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changes') }}
-- The night's changed dossiers (int_engine_changes) as the previous build left them in fct_dossiers, kept
-- before fct_dossiers replaces them (fct_dossiers depends on this model; this model reads it by relation,
-- not by ref, which would be a cycle). int_dossier_indicator_event_changes takes their contributions
-- back, and mart_day_on_time recounts the days they had ended or become overdue on. Each code is looked
-- up through fct_dossiers' unique index (changed_dossier_rows). A dossier new tonight has no row. Empty
-- on a complete rebuild (int_engine_changes is) and before fct_dossiers exists.
{% set stored = adapter.get_relation(database=target.database, schema='marts', identifier='fct_dossiers') %}
{% set columns = {
    'dossier_code': 'text', 'unit_code': 'text', 'received_date': 'date', 'is_received': 'boolean',
    'is_synced_to_national_portal': 'boolean', 'overdue_from_date': 'date', 'is_online': 'boolean',
    'is_full_online_eligible': 'boolean', 'is_paid_online': 'boolean', 'has_fee': 'boolean',
    'ended_date': 'date', 'is_ended': 'boolean', 'is_ended_on_time': 'boolean',
    'returns_written_result': 'boolean', 'has_electronic_result': 'boolean', 'is_digitised': 'boolean',
    'reuses_digitised_document': 'boolean', 'is_linked_to_personal_data_store': 'boolean',
    'uses_population_data': 'boolean', 'is_rated_dissatisfied': 'boolean', 'rated_date': 'date'} %}
{% if stored is not none %}
select {% for name in columns %}previous.{{ name }}{{ ", " if not loop.last }}{% endfor %}
from ({{ changed_dossier_rows(stored) }}) as previous
{% else %}
select {% for name, type in columns.items() %}null::{{ type }} as {{ name }}{{ ", " if not loop.last }}{% endfor %}
where false
{% endif %}
