"""The "Matcher" page inside the Airflow UI, as one folder.

``matcher_plugin.py`` is the entry Airflow loads (the ``.airflowignore`` beside it keeps Airflow from
loading the other files on their own); ``app.py`` holds the FastAPI app and its routes, ``auth.py`` the
login and security headers every route goes through, ``live.py`` the caches of what the page serves
live (the production model, the side-by-side view). The HTML comes from ``include.matcher.pages``.
"""
