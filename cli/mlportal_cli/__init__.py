"""``mlportal``: the ML Portal from a terminal, over its REST API with a personal or project token."""
