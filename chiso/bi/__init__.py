"""BI: dashboards defined once as files (bi/dashboards), provisioned into Metabase and Superset."""
