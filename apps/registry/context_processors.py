"""``unread_notifications``: the signed-in user's unread count, for the top bar.

Add "apps.registry.context_processors.notifications" to TEMPLATES' context_processors, then in
base.html: ``<a href="{% url 'notifications' %}">Notifications{% if unread_notifications %} ({{ unread_notifications }}){% endif %}</a>``.
"""

from .selectors import unread_count


def notifications(request):
    user = getattr(request, "user", None)
    return {"unread_notifications": unread_count(user) if user is not None else 0}
