"""The labels of a project's items, as the data stage needs them (freezing a version, the items
page's filter, the versions page's counts). Labels belong to labeling, a later stage: at start it
registers how to read them (``register_label_reader``), so datasets never imports it. Without a
registered reader every item counts as unlabeled."""


class LabelReader:
    """What labeling answers; this base answers for a portal without labeling."""

    def current(self, project):
        """[(item id, item sha256, label name, item original name)] of the project's labeled items."""
        return []

    def regions(self, project):
        """{item id: [boxes]} of the project's labeled items that carry boxes (see core/boxes.py)."""
        return {}

    def count(self, project):
        """How many of the project's items carry a label."""
        return 0

    def names(self, project):
        """The project's label names, in the labeling order."""
        return []


_reader = LabelReader()


def register_label_reader(reader):
    global _reader
    _reader = reader


def label_reader():
    return _reader
