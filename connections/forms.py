"""Forms for the app registry: a provider is picked first, then a form with only its fields.

Which fields a provider gets is derived from its catalogue record, so a new provider needs no
new form. Each broken rule answers with its own error on the field it concerns.
"""

import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from connections import destinations
from connections.models import ClientSecret, PrivateApp
from connections.providers import PROVIDER_CHOICES, Grant, PkceMode, Provider
from connections.validators import validate_redirect_uris

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
CREDENTIALS = ("service_username", "service_password")
SUBSCRIPTION_KEYS = ("subscription_key_primary", "subscription_key_secondary")
SECRET_FIELDS = (*CREDENTIALS, *SUBSCRIPTION_KEYS)


class ProviderChoiceForm(forms.Form):
    provider = forms.ChoiceField(choices=PROVIDER_CHOICES, widget=forms.RadioSelect)


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


def url_field(label: str) -> forms.URLField:
    return forms.URLField(label=label, required=False, max_length=200, assume_scheme="https")


def fields_for(provider: Provider) -> list[str]:
    """The model fields an admin fills in for this provider, in page order."""
    names = ["name", "client_id"]
    if len(provider.grants) > 1:
        names.append("grant_type")
    if len(provider.pkce_modes) > 1:
        names.append("pkce_mode")
    if len(provider.client_auths) > 1:
        names.append("client_auth")
    if provider.uses_redirect:
        names.append("redirect_uris")
    if provider.max_account_ids:
        names.append("account_ids")
    if provider.known_scopes or provider.generic:
        names.append("scopes")
    if provider.connector_scope:
        names.append("connector_uids")
    if provider.generic:
        names.append("scope_separator")
    if Grant.PASSWORD in provider.grants:
        names += CREDENTIALS
    if provider.api_key_header:
        names += SUBSCRIPTION_KEYS
    endpoints = ["authorize_url"] if provider.uses_redirect else []
    endpoints += ["token_url"] + (["revoke_url"] if provider.revokes else []) + ["api_base_url"]
    # A catalogue provider's own endpoints are overridden only where the operator allows
    # custom domains; where the catalogue has none (an environment's own URL), always.
    names += [
        n
        for n in endpoints
        if provider.generic or not getattr(provider, n) or settings.ALLOW_CUSTOM_ENDPOINTS
    ]
    names += ["test_path", "token_rate_limit", "token_rate_window"]
    # A custom domain answers with its own issuer, or Connect refuses every answer.
    if provider.generic or (provider.issuer and settings.ALLOW_CUSTOM_ENDPOINTS):
        names.append("issuer")
    if provider.uses_redirect:
        names.append("refresh_policy")
    return [*names, "application_url", "internal_comments"]


ENDPOINT_FIELDS = ("authorize_url", "token_url", "revoke_url", "api_base_url")
# Fields that mean something under some grants only: a provider with several grants (the
# generic one) shows them for those grants, and ignores what is posted in them otherwise.
FIELD_GRANTS = {
    "pkce_mode": {Grant.AUTHORIZATION_CODE},
    "redirect_uris": {Grant.AUTHORIZATION_CODE},
    "authorize_url": {Grant.AUTHORIZATION_CODE},
    "issuer": {Grant.AUTHORIZATION_CODE},
    "refresh_policy": {Grant.AUTHORIZATION_CODE},
    "service_username": {Grant.PASSWORD},
    "service_password": {Grant.PASSWORD},
}
REQUIRED = "Required for this provider and grant."


class AppForm(forms.ModelForm):
    redirect_uris = LinesField(
        required=False,
        # A URI may carry a comma in its query: only line breaks separate them.
        split=r"[\r\n]+",
        label="Redirect URIs",
        help_text="One per line, exactly as registered at the provider.",
    )
    account_ids = LinesField(required=False, label="Account ids", help_text="One per line.")
    connector_uids = LinesField(
        required=False,
        label="Connector UIDs",
    )
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
        required=False, min_value=1, max_value=100_000, label="Token requests allowed"
    )
    token_rate_window = forms.IntegerField(
        required=False, min_value=1, max_value=86_400, label="Per how many seconds"
    )

    class Meta:
        model = PrivateApp
        fields = [
            "name",
            "client_id",
            "grant_type",
            "pkce_mode",
            "client_auth",
            "redirect_uris",
            "account_ids",
            "scopes",
            "connector_uids",
            "scope_separator",
            *SECRET_FIELDS,
            "authorize_url",
            "token_url",
            "revoke_url",
            "api_base_url",
            "test_path",
            "token_rate_limit",
            "token_rate_window",
            "issuer",
            "refresh_policy",
            "application_url",
            "internal_comments",
        ]
        help_texts = {
            "issuer": "Optional: the issuer the provider names itself with after sign-in (its "
            "iss parameter). When set, Connect refuses an answer that does not carry it.",
            "scope_separator": "How scopes are joined in requests: a space (most providers) "
            "or a comma.",
        }
        labels = {
            "client_id": "Client id",
            "pkce_mode": "Client type",
            "client_auth": "Client authentication at the token endpoint",
            "service_username": "Service user name",
            "service_password": "Service user password",
            "subscription_key_primary": "Subscription key (primary)",
            "subscription_key_secondary": "Subscription key (secondary)",
            "application_url": "Application URL",
            "internal_comments": "Internal comments",
        }

    def __init__(self, *args, provider: Provider, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider = provider
        self.creating = self.instance.pk is None
        keep = set(fields_for(provider))
        if self.creating:
            keep |= {"client_secret", "secret_label"}
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        self._shape_fields()
        # The secret belongs with the client id it pairs with, not below the comments.
        self.order_fields(["name", "client_id", "client_secret", "secret_label"])

    def _shape_fields(self) -> None:
        p, f = self.provider, self.fields
        if "grant_type" in f:
            f["grant_type"].choices = [(g.value, g.label) for g in p.grants]
        if "pkce_mode" in f:
            f["pkce_mode"].choices = [(m.value, m.label) for m in p.pkce_modes]
        if "client_auth" in f:
            f["client_auth"].choices = [(c.value, c.label) for c in p.client_auths]
        if "scopes" in f:
            f["scopes"] = self._scopes_field()
        if "redirect_uris" in f:
            f["redirect_uris"].help_text += f" At most {p.max_redirect_uris}."
        if "account_ids" in f:
            f["account_ids"].help_text = (
                f"One to {p.max_account_ids}, one per line, as shown on {p.name}'s Integrations "
                "screen. A grant for any other account is refused."
            )
        if "connector_uids" in f:
            f["connector_uids"].help_text = f"One per line; needed with the {p.connector_scope} scope."
        for name in SECRET_FIELDS:
            if name in f:
                f[name] = forms.CharField(
                    label=f[name].label, required=False, max_length=500, widget=secret_input()
                )
                if getattr(self.instance, name):
                    f[name].help_text = "Set. Leave blank to keep it."
        for name in (*ENDPOINT_FIELDS, "test_path", "issuer"):
            if name in f and not p.generic:
                default = getattr(p, name)
                f[name].help_text = (
                    f"Leave blank for {default}." if default else "Your environment's own URL."
                )
        if "token_rate_limit" in f:
            f["token_rate_limit"].help_text = self._rate_limit_help()
        for name, text in FIELD_HELP.items():
            if name in f and not f[name].help_text:
                f[name].help_text = text.format(p=p)
        if not self.creating:
            self.initial.update({n: "" for n in SECRET_FIELDS})
        else:
            self.initial.setdefault("scopes", list(p.default_scopes))
        if "client_secret" in f and PkceMode.PKCE in p.pkce_modes:
            f["client_secret"].help_text += " Not needed when the client type is PKCE only."
        self._mark_required()
        if len(p.grants) > 1:
            for name, grants in FIELD_GRANTS.items():
                if name in f:
                    # portal.js shows the field only while one of these grants is picked.
                    f[name].widget.attrs["data-grants"] = " ".join(sorted(grants))

    def _mark_required(self) -> None:
        """Fields every grant of the provider needs are required (and marked so on the page);
        those only some grants need are checked in clean()."""
        p = self.provider
        always = set.intersection(*(set(self._needed_for(g)) for g in p.grants))
        if self.creating and all(m.needs_secret for m in p.pkce_modes):
            always.add("client_secret")
        for name in always & set(self.fields):
            if name in SECRET_FIELDS and getattr(self.instance, name):
                continue  # stored: blank keeps it
            self.fields[name].required = True
            self.fields[name].error_messages["required"] = (
                "A client secret is required." if name == "client_secret" else REQUIRED
            )

    def _rate_limit_help(self) -> str:
        limit = self.provider.token_rate_limit
        default = (
            f"{self.provider.name}'s documented {limit.requests} per {limit.per_seconds} s"
            if limit
            else "no limit"
        )
        return (
            "How many token requests the provider allows per client id, and in how many "
            f"seconds. The portal never sends more. Leave both blank for {default}."
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
        for name, grants in FIELD_GRANTS.items():
            if name in self.fields and grant not in grants:
                # Hidden for this grant: what was typed there is not saved over the stored value.
                data[name] = getattr(self.instance, name)
                self.errors.pop(name, None)
        for name in self._needed_for(grant):
            if name in self.fields and not data.get(name) and name not in self.errors:
                self.add_error(name, REQUIRED)
        self._check_secret(data, grant)
        self._check_rate_limit(data)
        self._check_connectors(data)
        return data

    def _needed_for(self, grant: str) -> list[str]:
        p = self.provider
        needed: list[str] = []
        if grant == Grant.AUTHORIZATION_CODE:
            needed += ["redirect_uris"] + (["authorize_url"] if not p.authorize_url else [])
        if grant == Grant.PASSWORD:
            needed += list(CREDENTIALS)
        if not p.token_url:
            needed.append("token_url")
        if not p.api_base_url and not p.generic:
            needed.append("api_base_url")
        if p.max_account_ids:
            needed.append("account_ids")
        return needed

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


FIELD_HELP = {
    "service_username": "The resource-owner user the portal signs in as. Stored encrypted.",
    "service_password": "Stored encrypted and never shown again.",
    "subscription_key_primary": "Optional: sent as {p.api_key_header}. Stored encrypted.",
    "subscription_key_secondary": "Optional: used when the primary key is regenerated.",
    "authorize_url": "Where users are sent to grant access (authorization code grant).",
    "token_url": "Where the portal obtains and refreshes tokens.",
    "revoke_url": "Optional: where the portal revokes tokens when a connection is disconnected.",
    "api_base_url": "Base of the API calls the test button makes.",
    "test_path": "A cheap authenticated GET, like /me, used to test a connection.",
    "client_secret": "Stored encrypted; shown once after saving, then only its last four.",
    "application_url": "For your own information.",
}


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
        field.label_from_instance = lambda s: f"{s.masked} {s.label}".strip() + (
            " (primary)" if s.is_primary else ""
        )
        if len(active) == 1:
            field.initial = active[0].pk

    @property
    def replacing(self) -> bool:
        return "replaces" in self.fields

    def clean_value(self) -> str:
        return _long_enough_secret(self.cleaned_data["value"])
