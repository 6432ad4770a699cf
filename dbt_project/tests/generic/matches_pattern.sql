{#- Fails on every non-null value of the column that does not match the POSIX regular expression. -#}
{% test matches_pattern(model, column_name, pattern) %}
select {{ column_name }} as failing_value
from {{ model }}
where {{ column_name }} is not null and {{ column_name }}::text !~ '{{ pattern }}'
{% endtest %}
