{#- The one implementation of the 766 scoring rules, driven by a rule_registry row.
    ratio: 100 × numerator / denominator, UNROUNDED (the portal scores from the exact ratio and rounds
    only the result: scoring from the rounded rate misses 8 of the published Gia Lai scores).
    linear: max × ratio / 100; capped(T): max if ratio ≥ T else max × ratio / T; half-up to 2 decimals.
    A missing ratio (0/0) follows the registry's zero-denominator policy. -#}
{% macro indicator_score(ratio, rule) -%}
    case
        when not {{ rule }}.is_scored then null
        when {{ ratio }} is null then
            case {{ rule }}.zero_denominator_score
                when 'zero' then 0
                when 'full' then {{ rule }}.max_points
            end
        when {{ rule }}.rule = 'capped' and {{ ratio }} >= {{ rule }}.cap_threshold then {{ rule }}.max_points
        when {{ rule }}.rule = 'capped' then round({{ rule }}.max_points * {{ ratio }} / {{ rule }}.cap_threshold, 2)
        else round({{ rule }}.max_points * {{ ratio }} / 100, 2)
    end
{%- endmacro %}

{#- The published rate: the ratio rounded half-up to 2 decimals, or the registry's rate for 0/0. -#}
{% macro indicator_rate(ratio, rule) -%}
    coalesce(round({{ ratio }}, 2), {{ rule }}.zero_denominator_rate)
{%- endmacro %}

{#- 100 × numerator / denominator as an exact numeric, null when the denominator is 0 or null. -#}
{% macro indicator_ratio(numerator, denominator) -%}
    (100.0 * {{ numerator }}::numeric / nullif({{ denominator }}, 0))
{%- endmacro %}
