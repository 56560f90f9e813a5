"""Console: the admin web UI shell (login, layout, dashboard, audit and jobs pages); each app adds its own pages."""
