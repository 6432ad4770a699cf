{#- Target registry rows whose dates are out of order: baseline after the window opens, window ending
    before it starts, or a deadline outside the window. The same checks as chiso.transform.targets, for a registry
    edited without running it. -#}
{% test target_dates_in_order(model) %}
select target_id, baseline_date, window_start, window_end, deadline
from {{ model }}
where (window_end is not null and window_end < window_start)
   or (deadline is not null and deadline < window_start)
   or (deadline is not null and window_end is not null and deadline > window_end)
   or (baseline_date is not null and baseline_date > window_start)
   or (target_kind = 'milestone' and (deadline is null or window_end is null))
   or (target_kind in ('baseline_plus_points', 'relative_change_points', 'relative_change_percent')
       and (baseline_date is null or baseline_measure is null or change_value is null))
{% endtest %}
