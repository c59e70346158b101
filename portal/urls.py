from django.apps import apps
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import account, views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include(account.urlpatterns)),
    path("t/<slug:tenant_slug>/", include("connections.urls")),
    path("", include("connections.api_urls")),
]
# Installed only when SANDBOX_ENABLED (settings.py): otherwise /sandbox/ is not routed.
if apps.is_installed("sandbox"):
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
