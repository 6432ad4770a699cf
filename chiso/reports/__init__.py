"""Reports for leaders: data for a report, its rendering, its recipients and its delivery."""
