{#- The portal's yyyyMMddHHmmss text as a timestamp (Asia/Ho_Chi_Minh wall clock; Vietnam has no
    daylight saving time, so local timestamps are unambiguous). Empty text is null. -#}
{% macro portal_timestamp(expression) -%}
    to_timestamp(nullif({{ expression }}, ''), 'YYYYMMDDHH24MISS')::timestamp
{%- endmacro %}
