import pytest

from apps.accounts.models import Role
from apps.labeling import services
from tests.factories import label_classes, make_item, member, png_bytes


@pytest.fixture
def classes(project):
    return label_classes(project)  # good (hotkey 1), defect (hotkey 2)


@pytest.fixture
def items(project):
    def make(n, **kw):
        return [
            make_item(
                project, png_bytes(size=(32, 32), seed=1000 + i + 100 * len(project.slug)), name=f"img{i:03d}.png", **kw
            )
            for i in range(n)
        ]

    return make


@pytest.fixture
def labeler2(project):
    return member(project, Role.LABELER, username="labeler2")


@pytest.fixture
def labeler3(project):
    return member(project, Role.LABELER, username="labeler3")


@pytest.fixture
def overlap(project):
    def set_(n, share=1.0, lease_seconds=600):
        st = services.labeling_settings_for(project)
        st.overlap, st.overlap_share, st.lease_seconds = n, share, lease_seconds
        st.save()
        return st

    return set_


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Users are made per test; a slow password hash only costs time here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
