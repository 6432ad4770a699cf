{#- A JSONB list field as an array, [] when it is absent or JSON null (the portal sends both). -#}
{% macro json_array(expression) -%}
    (case when jsonb_typeof({{ expression }}) = 'array' then {{ expression }} else '[]'::jsonb end)
{%- endmacro %}
