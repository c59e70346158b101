"""Accepting an invitation: `/invite/<token>/`, outside the tenant URLs (the person is not a
member yet). A new person picks a username and password; someone with an account signs in
first. An invitation for another e-mail than the signed-in account's is refused."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, login, password_validation
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.debug import sensitive_post_parameters

from connections import people


class NewAccountForm(forms.Form):
    name = forms.CharField(max_length=150, required=False, label="Your name")
    username = forms.RegexField(
        regex=r"^[\w.@+-]+\Z",
        max_length=150,
        error_messages={"invalid": "Letters, digits and @ . + - _ only."},
    )
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken; choose another.")
        return username

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif data.get("password1"):
            try:
                password_validation.validate_password(data["password1"])
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


@sensitive_post_parameters("password1", "password2")
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = people.invitation_by_token(token)
    problem = people.invitation_problem(invitation)
    if problem:
        return render(
            request, "connections/members/invitation.html", {"problem": problem}, status=410
        )
    user = request.user if request.user.is_authenticated else None
    existing = get_user_model().objects.filter(email__iexact=invitation.email).exists()
    form = NewAccountForm(request.POST or None) if user is None and not existing else None
    if request.method == "POST":
        try:
            if user is not None:
                people.invitation_accept(invitation=invitation, user=user)
            elif form is not None and form.is_valid():
                user = people.account_create(
                    invitation=invitation,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                    name=form.cleaned_data["name"],
                )
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        except people.PeopleError as exc:
            messages.error(request, str(exc))
        else:
            if user is not None:
                messages.success(request, f"Welcome to {invitation.tenant.name}.")
                return redirect("dashboard", tenant_slug=invitation.tenant.slug)
    context = {
        "invitation": invitation,
        "form": form,
        "existing": existing and user is None,
        "wrong_account": user is not None and not people.email_matches(invitation, user),
    }
    return render(request, "connections/members/invitation.html", context)


urlpatterns = [path("invite/<str:token>/", invitation_accept, name="invitation_accept")]
