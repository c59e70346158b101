"""The one form layout of the portal: `{{ form }}` renders every form the same way.

FORM_RENDERER (settings.py) points here, so a page never hand-writes labels and errors: labels
above inputs, required fields marked, help text under the input, and an error summary at the top
linking to each field that needs fixing (templates/forms/).
"""

from django.forms.renderers import TemplatesSetting


class PortalFormRenderer(TemplatesSetting):
    form_template_name = "forms/form.html"
    field_template_name = "forms/field.html"
