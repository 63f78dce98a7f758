"""The local web app (``python app.py --db DB``): search by photo, walk from result to result,
review duplicates, a map of the collection. ``webapp.server.create_app`` builds it."""
