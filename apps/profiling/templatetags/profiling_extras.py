from django import template

register = template.Library()


@register.filter
def pct(value):
    return "—" if value is None else f"{float(value):.1%}"


@register.filter
def num(value):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


@register.filter
def measured(value):
    """A stored measurement (number, None or a {class: share} mapping) in a few characters."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {num(v)}" for k, v in value.items())
    return num(value)
