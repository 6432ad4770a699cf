{#- Score of a sub-indicator from its rate (0-100) and its registry row:
    linear: max × rate; capped(T): max if rate ≥ T else max × rate / T; rounded to 2 decimals.
    A null rate (0/0) follows the registry's zero-denominator policy. -#}
{% macro indicator_score(rate, max_points, rule, cap_threshold, zero_denominator_policy) -%}
    case
        when {{ rate }} is null then
            case {{ zero_denominator_policy }}
                when 'zero' then 0
                when 'full' then {{ max_points }}
            end
        when {{ rule }} = 'capped' and {{ rate }} >= {{ cap_threshold }} then {{ max_points }}
        when {{ rule }} = 'capped' then round({{ max_points }} * {{ rate }} / {{ cap_threshold }}, 2)
        else round({{ max_points }} * {{ rate }} / 100, 2)
    end
{%- endmacro %}
