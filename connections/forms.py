"""Forms for the app registry: a provider is picked first, then a form with only its fields.

Which fields a provider gets is derived from its catalogue record, so a new provider needs no
new form. Each broken rule answers with its own error on the field it concerns.
"""

import re

from django import forms
from django.core.exceptions import ValidationError

from connections import destinations
from connections.app_fields import (
    ENDPOINT_FIELDS,
    SECRET_FIELDS,
    SPECS,
    fields_for,
    needed_for,
    specs_for,
)
from connections.models import ClientSecret, PrivateApp
from connections.providers import PROVIDER_CHOICES, Grant, PkceMode, Provider
from connections.validators import validate_redirect_uris

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
REQUIRED = "Required for this provider and grant."
MAX_SCOPES, MAX_SCOPE_LENGTH = 50, 120


class ProviderChoiceForm(forms.Form):
    provider = forms.ChoiceField(
        choices=PROVIDER_CHOICES,
        widget=forms.RadioSelect,
        label="Which provider is the app registered with?",
    )


class LinesField(forms.Field):
    """One value per line (commas also split, unless `split` says otherwise), blanks dropped,
    order kept; shown back joined with `join`."""

    widget = forms.Textarea(attrs={"rows": 3})

    def __init__(self, *args, split: str = r"[\r\n,]+", join: str = "\n", **kwargs):
        super().__init__(*args, **kwargs)
        self.split, self.join = split, join

    def to_python(self, value) -> list[str]:
        if not value:
            return []
        if isinstance(value, list | tuple):
            value = "\n".join(str(v) for v in value)
        if "\x00" in value:
            raise ValidationError("Null characters are not allowed.")
        return [line.strip() for line in re.split(self.split, value) if line.strip()]

    def prepare_value(self, value):
        return self.join.join(value) if isinstance(value, list | tuple) else value


def secret_input() -> forms.PasswordInput:
    # Never render a stored secret back into the page.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def secret_field(label: str) -> forms.CharField:
    return forms.CharField(label=label, required=False, max_length=500, widget=secret_input())


def url_field(label: str) -> forms.URLField:
    return forms.URLField(label=label, required=False, max_length=200, assume_scheme="https")


class AppForm(forms.ModelForm):
    redirect_uris = LinesField(
        required=False,
        # A URI may carry a comma in its query: only line breaks separate them.
        split=r"[\r\n]+",
        label="Redirect URIs",
    )
    account_ids = LinesField(required=False, label="Account ids")
    connector_uids = LinesField(required=False, label="Connector UIDs")
    service_username = secret_field("Service user name")
    service_password = secret_field("Service user password")
    subscription_key_primary = secret_field("Subscription key (primary)")
    subscription_key_secondary = secret_field("Subscription key (secondary)")
    client_secret = forms.CharField(
        required=False, max_length=500, strip=True, widget=secret_input()
    )
    secret_label = forms.CharField(required=False, max_length=80, label="Secret label")
    authorize_url = url_field("Authorize URL")
    token_url = url_field("Token URL")
    revoke_url = url_field("Revoke URL")
    api_base_url = url_field("API base URL")
    application_url = url_field("Application URL")
    token_rate_limit = forms.IntegerField(
        # The limiter keeps a stamp per request of the window: a bounded number of them.
        required=False,
        min_value=1,
        max_value=10_000,
        label="Token requests allowed",
    )
    token_rate_window = forms.IntegerField(
        required=False, min_value=1, max_value=86_400, label="Per how many seconds"
    )

    class Meta:
        model = PrivateApp
        fields = [spec.name for spec in SPECS]
        labels = {
            "client_id": "Client id",
            "pkce_mode": "Client type",
            "client_auth": "Client authentication at the token endpoint",
            "application_url": "Application URL",
            "internal_comments": "Internal comments",
            "webhook_signature_header": "Webhook signature header",
            "webhook_signature_encoding": "Webhook signature encoding",
            "webhook_timestamp_header": "Webhook timestamp header",
            "webhook_id_header": "Webhook delivery id header",
        }

    def __init__(self, *args, provider: Provider, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider = provider
        self.creating = self.instance.pk is None
        specs = specs_for(provider)
        keep = set(fields_for(provider))
        if self.creating:
            keep |= {"client_secret", "secret_label"}
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        if "scopes" in self.fields:
            self.fields["scopes"] = self._scopes_field()
        for spec in specs:
            field = self.fields[spec.name]
            field.help_text = spec.help(provider) or field.help_text
            if spec.grants and len(provider.grants) > 1:
                # portal.js shows the field only while one of these grants is picked.
                field.widget.attrs["data-grants"] = " ".join(sorted(spec.grants))
        self._limit_choices()
        self._shape_secrets()
        self._mark_required()
        # The secret belongs with the client id it pairs with, not below the comments.
        self.order_fields(["name", "client_id", "client_secret", "secret_label"])

    def _limit_choices(self) -> None:
        p, f = self.provider, self.fields
        for name, offered in (
            ("grant_type", p.grants),
            ("pkce_mode", p.pkce_modes),
            ("client_auth", p.client_auths),
        ):
            if name in f:
                f[name].choices = [(c.value, c.label) for c in offered]

    def _shape_secrets(self) -> None:
        """Stored credentials are never rendered back: blank keeps them."""
        for name in SECRET_FIELDS:
            if name in self.fields and getattr(self.instance, name):
                self.fields[name].help_text = "Set. Leave blank to keep it."
        if not self.creating:
            self.initial.update({n: "" for n in SECRET_FIELDS})
        else:
            self.initial.setdefault("scopes", list(self.provider.default_scopes))
        if "client_secret" in self.fields:
            self.fields["client_secret"].help_text = (
                "Stored encrypted; shown once after saving, then only its last four."
                + (
                    " Not needed when the client type is PKCE only."
                    if PkceMode.PKCE in self.provider.pkce_modes
                    else ""
                )
            )

    def _mark_required(self) -> None:
        """Fields every grant of the provider needs are required (and marked so on the page);
        those only some grants need are checked in clean()."""
        p = self.provider
        always = set.intersection(*(set(needed_for(p, g)) for g in p.grants))
        if self.creating and all(m.needs_secret for m in p.pkce_modes):
            always.add("client_secret")
        for name in always & set(self.fields):
            if name in SECRET_FIELDS and getattr(self.instance, name):
                continue  # stored: blank keeps it
            self.fields[name].required = True
            self.fields[name].error_messages["required"] = (
                "A client secret is required." if name == "client_secret" else REQUIRED
            )

    def _scopes_field(self) -> forms.Field:
        p = self.provider
        broad = f" {', '.join(p.broad_scopes)} grants broad access." if p.broad_scopes else ""
        if p.known_scopes and not p.scopes_open:
            return forms.MultipleChoiceField(
                choices=[(s, s) for s in p.known_scopes],
                widget=forms.CheckboxSelectMultiple,
                required=False,
                help_text=f"Ask for the least the integration needs.{broad}",
            )
        separator = "commas" if p.scope_separator == "," else "spaces or commas"
        known = f" Known: {', '.join(p.known_scopes)}." if p.known_scopes else ""
        return LinesField(
            required=False,
            split=r"[\s,]+",
            join=", " if p.scope_separator == "," else " ",
            widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            help_text=f"Separated by {separator}. Ask for the least the integration needs."
            f"{known}{broad}",
        )

    # --- per-field rules -------------------------------------------------------------------

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        clash = PrivateApp.objects.filter(tenant=self.instance.tenant, name=name)
        if clash.exclude(pk=self.instance.pk).exists():
            raise ValidationError("Another app in this tenant already has this name.")
        return name

    def clean_redirect_uris(self) -> list[str]:
        uris = self.cleaned_data["redirect_uris"]
        validate_redirect_uris(uris, limit=self.provider.max_redirect_uris)
        return uris

    def clean_account_ids(self) -> list[str]:
        ids = self.cleaned_data["account_ids"]
        limit = self.provider.max_account_ids
        if len(ids) > limit:
            raise ValidationError(f"At most {limit} account ids for {self.provider.name}.")
        _no_duplicates_or_long(ids, what="account id")
        return ids

    def clean_connector_uids(self) -> list[str]:
        uids = self.cleaned_data["connector_uids"]
        _no_duplicates_or_long(uids, what="connector UID")
        return uids

    def clean_scopes(self) -> list[str]:
        scopes = list(dict.fromkeys(self.cleaned_data["scopes"]))
        bad = [s for s in scopes if not SCOPE_TOKEN.match(s)]
        if bad:
            raise ValidationError(f"Not a valid scope: {bad[0]!r}.")
        # They travel in the authorize URL, which providers and proxies cap.
        if len(scopes) > MAX_SCOPES or any(len(s) > MAX_SCOPE_LENGTH for s in scopes):
            raise ValidationError(
                f"At most {MAX_SCOPES} scopes of at most {MAX_SCOPE_LENGTH} characters each."
            )
        return scopes

    def clean_client_secret(self) -> str:
        return _long_enough_secret(self.cleaned_data["client_secret"])

    # --- rules across fields ---------------------------------------------------------------

    def clean(self):
        data = super().clean()
        for name in ENDPOINT_FIELDS:
            if name in self.fields and data.get(name):
                try:
                    destinations.check_url(data[name])
                except destinations.Refused as exc:
                    self.add_error(name, f"The portal does not send requests there: {exc}.")
        for name in SECRET_FIELDS:
            if name in self.fields and not data.get(name):
                # Blank keeps what is stored: the form never shows it, so it cannot be retyped.
                data[name] = getattr(self.instance, name)
        grant = data.get("grant_type") or self.provider.grants[0]
        for spec in specs_for(self.provider):
            if not spec.applies_to(grant):
                # Hidden for this grant: what was typed there is not saved over the stored value.
                data[spec.name] = getattr(self.instance, spec.name)
                self.errors.pop(spec.name, None)
        for name in needed_for(self.provider, grant):
            if name in self.fields and not data.get(name) and name not in self.errors:
                self.add_error(name, REQUIRED)
        self._check_secret(data, grant)
        self._check_rate_limit(data)
        self._check_connectors(data)
        return data

    def _check_secret(self, data: dict, grant: str) -> None:
        mode = data.get("pkce_mode") if grant == Grant.AUTHORIZATION_CODE else None
        mode = PkceMode(mode or self.provider.pkce_modes[0])
        missing = self.creating and mode.needs_secret and not data.get("client_secret")
        if missing and "client_secret" not in self.errors:
            unless = " unless the client type is PKCE only" if "pkce_mode" in self.fields else ""
            self.add_error("client_secret", f"A client secret is required{unless}.")

    def _check_rate_limit(self, data: dict) -> None:
        given = [n for n in ("token_rate_limit", "token_rate_window") if data.get(n)]
        if len(given) == 1 and not {"token_rate_limit", "token_rate_window"} & set(self.errors):
            other = ({"token_rate_limit", "token_rate_window"} - set(given)).pop()
            self.add_error(other, "Give both the number of requests and the seconds, or neither.")

    def _check_connectors(self, data: dict) -> None:
        scope = self.provider.connector_scope
        if "connector_uids" not in self.fields or "connector_uids" in self.errors:
            return
        uses = scope in data.get("scopes", [])
        if uses and not data.get("connector_uids"):
            self.add_error("connector_uids", f"{scope} needs at least one connector UID.")
        if data.get("connector_uids") and not uses and "scopes" not in self.errors:
            self.add_error("connector_uids", f"Connector UIDs need the {scope} scope.")

    # --- what the services get --------------------------------------------------------------

    def app_fields(self) -> dict:
        model_fields = {f.name for f in PrivateApp._meta.concrete_fields}
        return {n: self.cleaned_data[n] for n in self.fields if n in model_fields}


def _long_enough_secret(value: str) -> str:
    # Blank is for the required check; a short value would be shown whole as its tail.
    if value and len(value) < ClientSecret.MIN_LENGTH:
        raise ValidationError(f"A client secret is at least {ClientSecret.MIN_LENGTH} characters.")
    return value


def _no_duplicates_or_long(values: list[str], *, what: str) -> None:
    errors = [
        ValidationError(f"{v[:40]}…: longer than 120 characters.") for v in values if len(v) > 120
    ]
    dupes = sorted({v for v in values if values.count(v) > 1})
    errors += [ValidationError(f"{v}: listed twice.") for v in dupes]
    if errors:
        raise ValidationError(errors)


class SecretForm(forms.ModelForm):
    """A new client secret; at the provider's limit it replaces one of the active secrets
    in the same step (rotation where a provider allows one secret)."""

    value = forms.CharField(
        label="Client secret",
        max_length=500,
        widget=secret_input(),
        help_text="Paste the secret the provider issued. It is shown once, then only its last "
        "four characters.",
    )
    replaces = forms.ModelChoiceField(
        queryset=ClientSecret.objects.none(),
        widget=forms.RadioSelect,
        empty_label=None,
        label="Replaces",
        help_text="Revoked in the same step; the new secret takes its place (primary if it was).",
    )

    class Meta:
        model = ClientSecret
        fields = ["value", "label"]

    def __init__(self, *args, app: PrivateApp, **kwargs):
        super().__init__(*args, **kwargs)
        active = app.client_secrets.filter(revoked_at__isnull=True)
        if len(active) < app.catalogue.max_client_secrets:
            del self.fields["replaces"]
            return
        field = self.fields["replaces"]
        field.queryset = active
        field.label_from_instance = lambda s: (
            f"{s.masked} {s.label}".strip() + (" (primary)" if s.is_primary else "")
        )
        if len(active) == 1:
            field.initial = active[0].pk

    @property
    def replacing(self) -> bool:
        return "replaces" in self.fields

    def clean_value(self) -> str:
        return _long_enough_secret(self.cleaned_data["value"])
