"""Base API classes every app's ``api/views.py`` builds on (tenancy, ETags, paging)."""
